import type { KilnService, ServiceDefinition, ServiceDeps, ServiceFactory, ServiceHealth } from '@kiln/contracts';
import { deferred, KilnError, withTimeout, type Clock, type Deferred } from '@kiln/core';
import { runInService } from './attribution.js';
import { RestartBackoff } from './backoff.js';
import type { RunnerState, SupervisorEvent } from './events.js';
import type { SupervisorSettings } from './settings.js';

export interface RunnerOptions {
  definition: ServiceDefinition;
  settings: SupervisorSettings;
  clock: Clock;
  makeDeps(run: number): ServiceDeps;
  emit(event: SupervisorEvent): void;
  /** The intensity limit was hit: the host exits so systemd can take over. */
  giveUp(service: string, error: Error): void;
}

export interface RunnerStatus {
  name: string;
  state: RunnerState;
  restarts: number;
  uptimeMs: number;
  lastError: string;
  health: ServiceHealth | undefined;
}

/**
 * One service's life inside a host: lazy load, start with a deadline, restart with backoff on a
 * crash, stop with a deadline. Operations are serialised, so a stop that arrives while the service
 * is starting waits for the start to settle and then stops it (never a half-started service left running).
 */
export class ServiceRunner {
  state: RunnerState = 'stopped';
  restarts = 0;
  private run = 0;
  private factory: ServiceFactory | undefined;
  private instance: KilnService | undefined;
  private startedAt: number | undefined;
  private lastError = '';
  private backoffTimer: NodeJS.Timeout | undefined;
  private crashDuringStart: Deferred<never> | undefined;
  private readonly backoff: RestartBackoff;
  private ops: Promise<void> = Promise.resolve();
  private waiters: Array<Deferred<void>> = [];

  constructor(private readonly options: RunnerOptions) {
    this.backoff = new RestartBackoff(options.settings);
  }

  get name(): string {
    return this.options.definition.name;
  }

  /**
   * Resolves once the service runs (possibly after restarts); rejects if it is given up on, or with
   * `cancelled` (details.held: an operator stop) if it is stopped first.
   */
  start(): Promise<void> {
    const waiter = deferred<void>();
    this.waiters.push(waiter);
    this.enqueue(() => this.doStart());
    return waiter.promise;
  }

  stop(hold = false): Promise<void> {
    return this.enqueue(() => this.doStop(hold));
  }

  restart(): Promise<void> {
    this.backoff.reset();
    const waiter = deferred<void>();
    this.enqueue(async () => {
      await this.doStop(false);
      this.waiters.push(waiter);
      await this.doStart();
    });
    return waiter.promise;
  }

  /** A failure raised by run `run` of this service (uncaught throw, unhandled rejection, deps.fail). */
  fail(error: Error, run: number): void {
    if (run !== this.run || (this.state !== 'starting' && this.state !== 'running')) {
      this.options.emit({ type: 'stale_failure', service: this.name, run, error });
      return;
    }
    if (this.state === 'starting') {
      this.crashDuringStart?.reject(error);
      return;
    }
    void this.enqueue(() => this.onCrash(error, run));
  }

  status(): RunnerStatus {
    let health: ServiceHealth | undefined;
    try {
      health = this.state === 'running' ? this.instance?.health() : undefined;
    } catch (err) {
      health = { ok: false, detail: { error: (err as Error).message } };
    }
    return {
      name: this.name,
      state: this.state,
      restarts: this.restarts,
      uptimeMs: this.state === 'running' && this.startedAt !== undefined ? this.options.clock.now() - this.startedAt : 0,
      lastError: this.lastError,
      health,
    };
  }

  private enqueue(op: () => Promise<void>): Promise<void> {
    const next = this.ops.then(op);
    this.ops = next.catch(() => undefined);
    return next;
  }

  private async doStart(): Promise<void> {
    if (this.state === 'running') return this.settleWaiters();
    clearTimeout(this.backoffTimer);
    const run = ++this.run;
    const context = { service: this.name, run };
    this.state = 'starting';
    this.options.emit({ type: 'starting', service: this.name, run });
    const crash = (this.crashDuringStart = deferred<never>());
    crash.promise.catch(() => undefined);
    try {
      this.factory ??= await runInService(context, () => this.options.definition.load());
      const factory = this.factory;
      let instance: KilnService;
      try {
        instance = runInService(context, () => factory(this.options.makeDeps(run)));
      } catch (err) {
        // A factory that rejects its configuration fails the same way every time: no restart ladder.
        if (err instanceof KilnError && err.code === 'invalid_args') return this.giveUp(err);
        throw err;
      }
      this.instance = instance;
      const started = runInService(context, () => instance.start());
      await withTimeout(Promise.race([started, crash.promise]), this.options.settings.startTimeoutMs, () =>
        new KilnError('timeout', `service ${this.name} did not start within ${this.options.settings.startTimeoutMs} ms`, { service: this.name }),
      );
    } catch (err) {
      await this.onCrash(asError(err), run);
      return;
    } finally {
      this.crashDuringStart = undefined;
    }
    this.state = 'running';
    this.startedAt = this.options.clock.now();
    this.options.emit({ type: 'started', service: this.name, run });
    this.settleWaiters();
  }

  private async onCrash(error: Error, run: number): Promise<void> {
    if (run !== this.run) return;
    this.lastError = error.message;
    this.options.emit({ type: 'crashed', service: this.name, run, error });
    this.run++; // anything the dead run still throws is stale from here on
    await this.stopInstance();
    const delayMs = this.backoff.next(this.options.clock.now(), this.startedAt);
    this.startedAt = undefined;
    if (delayMs === undefined) return this.giveUp(error);
    this.state = 'backoff';
    this.restarts++;
    this.options.emit({ type: 'backoff', service: this.name, delayMs, restarts: this.restarts });
    this.backoffTimer = setTimeout(() => void this.enqueue(() => this.doStart()), delayMs);
  }

  private giveUp(error: Error): void {
    this.state = 'failed';
    this.lastError = error.message;
    this.options.emit({ type: 'gave_up', service: this.name, restartsInWindow: this.backoff.restartsInWindow, error });
    const reason = error instanceof KilnError && error.code === 'invalid_args' ? 'is misconfigured' : 'keeps failing';
    this.settleWaiters(new KilnError('unavailable', `service ${this.name} ${reason}: ${error.message}`, { service: this.name }, { cause: error }));
    this.options.giveUp(this.name, error);
  }

  private async doStop(hold: boolean): Promise<void> {
    clearTimeout(this.backoffTimer);
    const wasActive = this.instance !== undefined;
    this.run++;
    if (wasActive) this.state = 'stopping';
    await this.stopInstance();
    this.startedAt = undefined;
    this.state = hold ? 'held' : 'stopped';
    this.settleWaiters(new KilnError('cancelled', `service ${this.name} was stopped before it started`, { service: this.name, held: hold }));
    this.options.emit({ type: 'stopped', service: this.name, held: hold });
  }

  private async stopInstance(): Promise<void> {
    const instance = this.instance;
    this.instance = undefined;
    if (!instance) return;
    const { stopTimeoutMs } = this.options.settings;
    try {
      await withTimeout(
        runInService({ service: this.name, run: -1 }, () => instance.stop()),
        stopTimeoutMs,
        () => new KilnError('timeout', `service ${this.name} did not stop within ${stopTimeoutMs} ms`),
      );
    } catch (err) {
      if (err instanceof KilnError && err.code === 'timeout') this.options.emit({ type: 'stop_timeout', service: this.name, timeoutMs: stopTimeoutMs });
      else this.lastError = asError(err).message;
    }
  }

  private settleWaiters(error?: Error): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      if (error) w.reject(error);
      else w.resolve();
    }
  }
}

export function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
