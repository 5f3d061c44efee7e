import { hostname } from 'node:os';
import type { Bus, BusSubscription } from '@kiln/bus';
import type { KilnConfig } from '@kiln/config';
import { encode, serveBus, systemPb, systemSubjects, type ServiceDefinition } from '@kiln/contracts';
import { disposable, disposeAll, invalidArgs, KilnError, storageHealth, systemClock, type Clock, type StorageFailure } from '@kiln/core';
import { serviceLogger, type Logger } from '@kiln/logging';
import { currentService } from './attribution.js';
import { toProtoState, type SupervisorEvent } from './events.js';
import { ProcessMetrics } from './metrics.js';
import { startOrder } from './order.js';
import { asError, ServiceRunner, type RunnerStatus } from './runner.js';
import type { SupervisorSettings } from './settings.js';

export type ControlAction = 'stop' | 'start' | 'restart';

export interface SupervisorOptions {
  /** Every service this build knows (not imported until hosted). */
  definitions: readonly ServiceDefinition[];
  /** The names to host here. */
  hosted: readonly string[];
  settings: SupervisorSettings;
  bus: Bus;
  config: KilnConfig;
  logger: Logger;
  clock?: Clock;
  /** Called when a service exceeds its restart intensity: the process should exit non-zero. */
  onFatal?(error: Error): void;
}

export interface SupervisorStatus {
  /** Every service runs and no write of this process is failing for lack of space. */
  ready: boolean;
  /** Why the host is degraded: directories a write failed in for lack of space (until a write there succeeds). */
  degraded: StorageFailure[];
  pid: number;
  services: RunnerStatus[];
  process: ReturnType<ProcessMetrics['sample']>;
}

/**
 * Hosts services in one process: dependency-ordered start, reverse-ordered stop, one restart loop
 * per service, failures attributed to the service that raised them, per-service control on the bus.
 */
export class Supervisor {
  private readonly runners: ServiceRunner[];
  private readonly listeners = new Set<(event: SupervisorEvent) => void>();
  private readonly metrics = new ProcessMetrics();
  private readonly clock: Clock;
  private controlSubscriptions: BusSubscription[] = [];
  private heartbeat: NodeJS.Timeout | undefined;
  private ready = false;
  private stopping = false;

  constructor(private readonly options: SupervisorOptions) {
    this.clock = options.clock ?? systemClock;
    const known = new Map(options.definitions.map((d) => [d.name, d]));
    const hosted = [...new Set(options.hosted)].map((name) => {
      const definition = known.get(name);
      if (!definition) throw invalidArgs('services', name, `unknown service; known: ${[...known.keys()].join(', ')}`);
      return definition;
    });
    this.runners = startOrder(hosted).map(
      (definition) =>
        new ServiceRunner({
          definition,
          settings: options.settings,
          clock: this.clock,
          makeDeps: (run) => {
            const logger = serviceLogger(options.logger, definition.name);
            return {
              name: definition.name,
              bus: options.bus,
              config: options.config,
              logger,
              fail: (error: unknown) => this.runner(definition.name)?.fail(asError(error), run),
            };
          },
          emit: (event) => this.emit(event),
          giveUp: (_service, error) => this.options.onFatal?.(error),
        }),
    );
  }

  get serviceNames(): string[] {
    return this.runners.map((r) => r.name);
  }

  onEvent(listener: (event: SupervisorEvent) => void): Disposable {
    this.listeners.add(listener);
    return disposable(() => this.listeners.delete(listener));
  }

  /** Start every hosted service in dependency order; resolves when all run (ready). */
  async start(): Promise<void> {
    this.controlSubscriptions = this.runners.flatMap((runner) =>
      serveBus(
        this.options.bus,
        systemPb.ServiceControlServiceDefinition,
        {
          control: async (request) => {
            const state = await this.control(runner.name, parseAction(request.action));
            return { service: runner.name, state };
          },
        },
        { scope: runner.name },
      ),
    );
    for (const runner of this.runners) {
      if (this.stopping) return;
      try {
        await runner.start();
      } catch (err) {
        // An operator stop while the service starts (or waits in its restart backoff) holds it: the
        // operator's choice, not a failure, so the host goes on with the rest and stays up.
        if (isOperatorHold(err)) continue;
        throw err;
      }
    }
    // Ready means reachable: on NATS the services' responders must be registered with the server
    // before anyone is told (a caller on another connection would otherwise get "no responders").
    await this.options.bus.flush().catch(() => undefined);
    this.heartbeat = setInterval(() => this.publishHealth(undefined, true), this.options.settings.heartbeatMs);
    this.heartbeat.unref();
    this.ready = true;
    this.publishHealth();
    this.emit({ type: 'ready' });
  }

  /** Stop in reverse dependency order, each service bounded by stopTimeoutMs. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.ready = false;
    clearInterval(this.heartbeat);
    disposeAll(this.controlSubscriptions);
    this.controlSubscriptions = [];
    for (const runner of [...this.runners].reverse()) await runner.stop();
    this.metrics.close();
  }

  async control(service: string, action: ControlAction): Promise<systemPb.ServiceState> {
    const runner = this.runner(service);
    if (!runner) throw new KilnError('not_found', `service ${JSON.stringify(service)} is not hosted here`, { service });
    if (this.stopping) throw new KilnError('failed_precondition', 'the supervisor is shutting down', { service });
    if (action === 'stop') await runner.stop(true);
    else if (action === 'start') await runner.start();
    else await runner.restart();
    this.publishHealth(runner);
    return toProtoState(runner.state);
  }

  status(): SupervisorStatus {
    const degraded = storageHealth.failures;
    return {
      ready: this.ready && this.runners.every((r) => r.state === 'running' || r.state === 'held') && degraded.length === 0,
      degraded,
      pid: process.pid,
      services: this.runners.map((r) => r.status()),
      process: this.metrics.sample(),
    };
  }

  /**
   * Route a process-level failure to the service whose async context raised it. Returns false when
   * no hosted service owns it (the host then treats it as fatal, as Node would).
   */
  attributeFailure(error: unknown): boolean {
    const context = currentService();
    const err = asError(error);
    if (!context) {
      this.emit({ type: 'unattributed_failure', error: err });
      return false;
    }
    this.runner(context.service)?.fail(err, context.run);
    return true;
  }

  /** uncaughtException / unhandledRejection → the owning service restarts, the herd stays up. */
  installProcessHooks(onUnattributed: (error: Error) => void): Disposable {
    const handler = (error: unknown): void => {
      if (!this.attributeFailure(error)) onUnattributed(asError(error));
    };
    process.on('uncaughtException', handler);
    process.on('unhandledRejection', handler);
    return disposable(() => {
      process.off('uncaughtException', handler);
      process.off('unhandledRejection', handler);
    });
  }

  private runner(name: string): ServiceRunner | undefined {
    return this.runners.find((r) => r.name === name);
  }

  private emit(event: SupervisorEvent): void {
    for (const listener of this.listeners) listener(event);
    if (event.type !== 'ready' && event.type !== 'unattributed_failure' && this.ready) {
      this.publishHealth(this.runner(event.service));
    }
  }

  private publishHealth(only?: ServiceRunner, newWindow = false): void {
    const process_ = this.metrics.sample(newWindow);
    const host = hostname();
    for (const runner of only ? [only] : this.runners) {
      const status = runner.status();
      const message: systemPb.ServiceHealth = {
        service: status.name,
        state: toProtoState(status.state),
        restarts: status.restarts,
        uptimeMs: status.uptimeMs,
        lastError: status.lastError,
        eventLoopDelayP99Ms: process_.eventLoopDelayP99Ms,
        heapUsedBytes: process_.heapUsedBytes,
        rssBytes: process_.rssBytes,
        pid: process.pid,
        host,
        detail: status.health?.detail ?? {},
        sentAtMs: this.clock.now(),
      };
      try {
        this.options.bus.publish(systemSubjects.health(status.name), encode(systemPb.ServiceHealth, message));
      } catch {
        // The bus is closing during shutdown; a missed heartbeat is harmless.
      }
    }
  }
}

function isOperatorHold(err: unknown): boolean {
  return err instanceof KilnError && err.code === 'cancelled' && err.details.held === true;
}

function parseAction(action: systemPb.ControlAction): ControlAction {
  switch (action) {
    case systemPb.ControlAction.CONTROL_ACTION_STOP:
      return 'stop';
    case systemPb.ControlAction.CONTROL_ACTION_START:
      return 'start';
    case systemPb.ControlAction.CONTROL_ACTION_RESTART:
      return 'restart';
    default:
      throw invalidArgs('action', action, 'must be stop, start or restart');
  }
}
