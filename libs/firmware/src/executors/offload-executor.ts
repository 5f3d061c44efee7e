import { KilnError, toKilnError, type Clock } from '@kiln/core';
import type { Logger } from '@kiln/logging';
import { JobType } from '../jobs/job.js';
import type { OffloaderSettings } from '../offloader/settings-store.js';
import type { ExecutorExit, ExecutorProcess, ExecutorRequest, JobExecutor, PinnedState } from './executor.js';
import { RemoteRun } from './remote-run.js';

/** A paired receiver as the scheduler sees it (the pool filters out what is not eligible). */
export interface EligibleReceiver {
  /** The receiver's dashboard id. */
  id: string;
  /** "name (host:port)", for logs. */
  label: string;
  /** Its compile lane is empty by its latest report, received at `reportedAtMs`. */
  reportedIdle: boolean;
  reportedAtMs: number;
}

/** A paired receiver looked up by pin, for a job sent to it (its enabled switch does not matter there). */
export interface PairedReceiver {
  id: string;
  label: string;
  /** Its status stream is up. */
  connected: boolean;
  /** No connection attempt has ended yet (just paired, or this host just started). */
  connecting: boolean;
  /** Its Kiln version (empty until it reported), and whether the version_match_policy accepts it. */
  version: string;
  versionOk: boolean;
}

/**
 * The receivers this offloader is paired with (gRPC lives behind this seam, loaded lazily).
 * `eligible()` lists the approved, enabled, connected, version-compatible ones; `compile` runs one
 * compile there, streaming its lines to `out`, and resolves with its exit: `lost` when the receiver
 * went away, cancelled (SIGTERM) once `signal` aborted and the receiver confirmed it.
 */
export interface ReceiverPool {
  eligible(): EligibleReceiver[];
  /**
   * Resolves once every enabled receiver has answered or failed its first connection attempt (each
   * bounded): until then nobody being eligible only means nobody has connected yet — right after a
   * start, a restored compile would otherwise go to this host before its receivers are reached.
   */
  settled(): Promise<void>;
  /** The receiver paired under `pin` (lowercase hex), whether or not it is enabled; undefined when none is. */
  byPin(pin: string): PairedReceiver | undefined;
  onChange(listener: () => void): void;
  compile(receiverId: string, request: ExecutorRequest, out: (lines: string[]) => Promise<void>, signal: AbortSignal): Promise<ExecutorExit>;
  /** Re-read the pairings (after a pair, unpair or enable change). */
  reload(): Promise<void>;
  stop(): Promise<void>;
  detail(): Record<string, string>;
}

export interface OffloadExecutorOptions {
  /** Where compiles run on this host (a local slot or the compile workers). */
  base: JobExecutor;
  settings: () => OffloaderSettings;
  /** A receiver lost mid-build is replaced at most this many times, then the compile runs locally. */
  maxRemoteRetries: number;
  logger: Logger;
  clock: Clock;
}

interface Assignment {
  count: number;
  /** Start of the earliest compile of ours running there (the "oldest busy" receiver finishes first). */
  since: number[];
  lastEndedAtMs: number;
}

type Placement = { where: 'remote'; receiver: EligibleReceiver } | { where: 'local' };

/**
 * The compile lane's executor on an offloader. Scheduler: an idle eligible receiver first (the one
 * idle longest), then this host when it is in the pool and has a free slot, then the receiver whose
 * running compile of ours is oldest, else this host. Capacity is the eligible receivers plus the
 * local slots when local builds are allowed (in the pool, or no receiver eligible), so the lane
 * dispatches remote compiles in parallel, one per receiver. Non-compile jobs (clean, rename) and
 * everything while remote builds are off run on `base`.
 */
export class OffloadExecutor implements JobExecutor {
  readonly kind: string;
  private pool: ReceiverPool | undefined;
  private listener: () => void = () => undefined;
  private poolListener: () => void = () => undefined;
  private readonly assignments = new Map<string, Assignment>();
  /** Receivers running a job sent to them: the scheduler places nothing else there meanwhile. */
  private readonly pinnedBusy = new Set<string>();
  private localRunning = 0;
  private readonly localWaiters: Array<() => void> = [];

  constructor(private readonly options: OffloadExecutorOptions) {
    this.kind = options.base.kind;
    options.base.onCapacityChange(() => {
      this.drainLocalWaiters();
      this.listener();
    });
  }

  /** Attach (or detach) the receivers; the lanes are told the capacity changed. */
  attachPool(pool: ReceiverPool | undefined): void {
    this.pool = pool;
    pool?.onChange(() => {
      this.listener();
      this.poolListener();
    });
    this.listener();
  }

  /** Told when the attached pool changes (a receiver connected, disconnected, or the pairings were reloaded). */
  onPoolChange(listener: () => void): void {
    this.poolListener = listener;
  }

  get hasPool(): boolean {
    return this.pool !== undefined;
  }

  get capacity(): number {
    const receivers = this.receivers();
    const localAllowed = this.options.settings().include_local_in_pool || receivers.length === 0;
    return receivers.filter((r) => !this.pinnedBusy.has(r.id)).length + (localAllowed ? this.options.base.capacity : 0);
  }

  onCapacityChange(listener: () => void): void {
    this.listener = listener;
  }

  async start(): Promise<void> {
    await this.options.base.start();
  }

  async stop(): Promise<void> {
    await this.pool?.stop();
    await this.options.base.stop();
  }

  detail(): Record<string, string> {
    const remote = [...this.assignments.values()].reduce((n, a) => n + a.count, 0);
    return {
      ...this.options.base.detail(),
      ...(this.pool ? { ...this.pool.detail(), eligibleReceivers: String(this.receivers().length), remoteCompiles: String(remote) } : {}),
    };
  }

  async run(request: ExecutorRequest): Promise<ExecutorProcess> {
    if (request.receiverPin) return this.runPinned(request, request.receiverPin);
    if (request.type === JobType.JOB_TYPE_COMPILE && this.pool && this.options.settings().remote_builds_enabled) await this.pool.settled();
    if (request.type !== JobType.JOB_TYPE_COMPILE || this.receivers().length === 0) return this.runLocal(request);
    const placement = this.place(new Set());
    if (placement.where === 'local') return this.runLocal(request, '... [compiling on this host]');
    const cancel = new AbortController();
    let localProcess: ExecutorProcess | undefined;
    const run = new RemoteRun(request.jobId, placement.receiver.id, async () => {
      cancel.abort();
      await localProcess?.terminate();
    });
    void this.runRemote(request, placement.receiver, run, cancel.signal, (p) => (localProcess = p)).catch((err: unknown) =>
      run.finish({ exitCode: null, signal: null, error: toKilnError(err) }),
    );
    return run;
  }

  /** Eligible receivers while remote builds are on. */
  private receivers(): EligibleReceiver[] {
    if (!this.pool || !this.options.settings().remote_builds_enabled) return [];
    return this.pool.eligible();
  }

  private place(excluded: ReadonlySet<string>, allowLocal = true): Placement {
    const receivers = this.receivers().filter((r) => !excluded.has(r.id) && !this.pinnedBusy.has(r.id));
    const idle = receivers.filter((r) => this.isIdle(r)).sort((a, b) => this.assignment(a.id).lastEndedAtMs - this.assignment(b.id).lastEndedAtMs);
    if (idle[0]) return this.reserve(idle[0]);
    const localInPool = this.options.settings().include_local_in_pool;
    if (allowLocal && localInPool && this.localRunning < this.options.base.capacity) return { where: 'local' };
    const busy = receivers.sort((a, b) => this.oldestOf(a.id) - this.oldestOf(b.id));
    if (busy[0]) return this.reserve(busy[0]);
    return { where: 'local' };
  }

  /**
   * Idle: none of our compiles runs there, and no report received since our last one ended says it
   * is busy (its own report may lag our bookkeeping; a report older than our last finish is stale).
   */
  private isIdle(receiver: EligibleReceiver): boolean {
    const a = this.assignment(receiver.id);
    return a.count === 0 && (receiver.reportedIdle || receiver.reportedAtMs <= a.lastEndedAtMs);
  }

  private oldestOf(id: string): number {
    const since = this.assignment(id).since;
    return since.length > 0 ? Math.min(...since) : Number.MAX_SAFE_INTEGER;
  }

  private assignment(id: string): Assignment {
    let a = this.assignments.get(id);
    if (!a) this.assignments.set(id, (a = { count: 0, since: [], lastEndedAtMs: 0 }));
    return a;
  }

  /** Counted at once (synchronously), so the next job placed in the same pump sees it. */
  private reserve(receiver: EligibleReceiver): Placement {
    const a = this.assignment(receiver.id);
    a.count++;
    a.since.push(this.options.clock.now());
    return { where: 'remote', receiver };
  }

  private release(id: string): void {
    const a = this.assignment(id);
    a.count = Math.max(0, a.count - 1);
    a.since.shift();
    a.lastEndedAtMs = this.options.clock.now();
    this.listener();
  }

  /** One compile on receivers: a lost receiver is replaced (at most maxRemoteRetries times), then this host builds it. */
  private async runRemote(request: ExecutorRequest, first: EligibleReceiver, run: RemoteRun, signal: AbortSignal, onLocal: (p: ExecutorProcess) => void): Promise<void> {
    const tried = new Set<string>();
    let receiver: EligibleReceiver | undefined = first;
    let losses = 0;
    while (receiver) {
      tried.add(receiver.id);
      await run.deliver([`... [compiling on receiver ${receiver.label}]`]);
      let exit: ExecutorExit;
      try {
        exit = await this.pool!.compile(receiver.id, request, (lines) => run.deliver(lines), signal);
      } finally {
        this.release(receiver.id);
      }
      if (!exit.lost || signal.aborted) return run.finish(signal.aborted ? { exitCode: null, signal: 'SIGTERM' } : exit);
      losses++;
      const reason = exit.error?.message ?? 'receiver lost';
      this.options.logger.warn({ jobId: request.jobId, receiver: receiver.label, reason, losses }, 'receiver lost a remote compile');
      const next = losses <= this.options.maxRemoteRetries ? this.place(tried, false) : { where: 'local' as const };
      if (next.where === 'local') {
        await run.deliver([`... [receiver ${receiver.label} lost the build (${reason}); compiling on this host]`]);
        receiver = undefined;
      } else {
        await run.deliver([`... [receiver ${receiver.label} lost the build (${reason}); retrying elsewhere (${losses}/${this.options.maxRemoteRetries})]`]);
        receiver = next.receiver;
      }
    }
    const local = await this.runLocal(request);
    onLocal(local);
    if (signal.aborted) void local.terminate();
    for await (const line of local.lines) await run.deliver([line]);
    run.finish(await local.exited);
  }

  // ---- jobs sent to one receiver (remote_build/submit_job) ------------------------------------

  /**
   * A job pinned to the receiver behind `pin` starts once no compile of ours runs there. The user
   * chose that receiver, so its enabled switch and `remote_builds_enabled` do not matter (manual
   * sends are explicit, as upstream); not paired, not connected or a version the policy refuses
   * fails the job, naming the receiver.
   */
  pinnedState(pin: string): PinnedState {
    const receiver = this.pool?.byPin(pin);
    if (!receiver) return refused(new KilnError('not_found', `no receiver is paired with pin ${pin}`, { pin_sha256: pin }));
    if (receiver.connecting) return { state: 'wait' };
    if (!receiver.connected) return refused(new KilnError('unavailable', `receiver ${receiver.label} is not connected`, { pin_sha256: pin, receiver: receiver.label }));
    if (!receiver.versionOk) {
      const policy = this.options.settings().version_match_policy;
      return refused(new KilnError('failed_precondition', `receiver ${receiver.label} runs Kiln ${receiver.version}, which version_match_policy "${policy}" refuses`, { pin_sha256: pin, receiver: receiver.label, version: receiver.version }));
    }
    return this.pinnedBusy.has(receiver.id) || this.assignment(receiver.id).count > 0 ? { state: 'wait' } : { state: 'ready' };
  }

  /** The compile on that receiver only: a lost receiver fails the job (never retried elsewhere nor built here). */
  private async runPinned(request: ExecutorRequest, pin: string): Promise<ExecutorProcess> {
    const verdict = this.pinnedState(pin);
    if (verdict.state === 'refused') throw verdict.error;
    const receiver = this.pool!.byPin(pin)!;
    this.pinnedBusy.add(receiver.id);
    this.reserve({ id: receiver.id, label: receiver.label, reportedIdle: false, reportedAtMs: 0 });
    const cancel = new AbortController();
    const run = new RemoteRun(request.jobId, receiver.id, async () => cancel.abort());
    void (async () => {
      await run.deliver([`... [compiling on receiver ${receiver.label} (sent there by remote_build/submit_job)]`]);
      let exit: ExecutorExit;
      try {
        exit = await this.pool!.compile(receiver.id, request, (lines) => run.deliver(lines), cancel.signal);
      } finally {
        this.pinnedBusy.delete(receiver.id);
        this.release(receiver.id);
      }
      if (cancel.signal.aborted) return run.finish({ exitCode: null, signal: 'SIGTERM' });
      if (!exit.lost) return run.finish(exit);
      const reason = exit.error?.message ?? 'receiver lost';
      this.options.logger.warn({ jobId: request.jobId, receiver: receiver.label, reason }, 'receiver lost a compile sent to it');
      const message = `receiver ${receiver.label} lost the build (${reason}); the job was sent to that receiver, so it is not retried elsewhere`;
      await run.deliver([`... [${message}]`]);
      run.finish({ exitCode: null, signal: null, error: new KilnError('unavailable', message, { pin_sha256: pin, receiver: receiver.label }) });
    })().catch((err: unknown) => run.finish({ exitCode: null, signal: null, error: toKilnError(err) }));
    return run;
  }

  /** On `base`, within its slots (a job that reaches here while they are taken waits for one). */
  private async runLocal(request: ExecutorRequest, notice?: string): Promise<ExecutorProcess> {
    while (this.localRunning >= Math.max(1, this.options.base.capacity)) await new Promise<void>((resolve) => this.localWaiters.push(resolve));
    this.localRunning++;
    let proc: ExecutorProcess;
    try {
      proc = await this.options.base.run(request);
    } catch (err) {
      this.localDone();
      throw err;
    }
    void proc.exited.finally(() => this.localDone());
    if (!notice) return proc;
    return { lines: prepend(notice, proc.lines), exited: proc.exited, terminate: () => proc.terminate() };
  }

  private localDone(): void {
    this.localRunning--;
    this.drainLocalWaiters();
    this.listener();
  }

  private drainLocalWaiters(): void {
    while (this.localWaiters.length > 0 && this.localRunning < Math.max(1, this.options.base.capacity)) this.localWaiters.shift()!();
  }
}

function refused(error: KilnError): PinnedState {
  return { state: 'refused', error };
}

async function* prepend(first: string, rest: AsyncIterable<string>): AsyncGenerator<string> {
  yield first;
  yield* rest;
}
