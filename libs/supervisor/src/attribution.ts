import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Which service (and which run of it) the current code belongs to. Everything a service starts
 * (timers, promises, bus handlers bound with AsyncResource) inherits this context, so an uncaught
 * throw or unhandled rejection can be traced back to the one service that raised it.
 */
export interface ServiceContext {
  readonly service: string;
  readonly run: number;
}

const storage = new AsyncLocalStorage<ServiceContext>();

export function runInService<T>(context: ServiceContext, fn: () => T): T {
  return storage.run(context, fn);
}

export function currentService(): ServiceContext | undefined {
  return storage.getStore();
}
