import type { Bus, BusSubscription } from '@kiln/bus';
import { busClient, decodeOrThrow, firmwareWorkerPb as wpb, firmwareWorkerSubjects, serveBus, WORKER_ID_PATTERN } from '@kiln/contracts';
import { disposeAll, isErrorCode, KilnError, toKilnError, type Clock } from '@kiln/core';
import type { Logger } from '@kiln/logging';
import type { ExecutorProcess, ExecutorRequest, JobExecutor } from './executor.js';
import { RemoteRun } from './remote-run.js';

export interface WorkerPoolOptions {
  bus: Bus;
  logger: Logger;
  clock: Clock;
  /** A worker silent for this long is lost, and so is its job. */
  timeoutMs: number;
}

interface WorkerEntry {
  id: string;
  instance: string;
  lastSeenMs: number;
  pid: number;
  host: string;
  run: RemoteRun | undefined;
}

/** Deadline for a worker to accept a job or a cancel: it answers from memory, so only a dead one is slower. */
const WORKER_CALL_TIMEOUT_MS = 3_000;

/**
 * The compile lane's jobs run on `kiln worker compile` processes over the bus. Workers announce
 * themselves with heartbeats; capacity is the number of live workers (one job each). A worker that
 * stops on purpose (`WorkerStopped`), restarts (new instance under its id) or is silent for `timeoutMs` is lost; its job ends `lost` and the lanes
 * decide what happens to it.
 */
export class WorkerPoolExecutor implements JobExecutor {
  readonly kind = 'workers';
  private readonly workers = new Map<string, WorkerEntry>();
  private listener: () => void = () => undefined;
  private bindings: Disposable[] = [];
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly options: WorkerPoolOptions) {}

  get capacity(): number {
    return this.workers.size;
  }

  onCapacityChange(listener: () => void): void {
    this.listener = listener;
  }

  async start(): Promise<void> {
    const { bus } = this.options;
    this.bindings = [
      bus.subscribe(firmwareWorkerSubjects.heartbeat, (msg) => this.onHeartbeat(decodeOrThrow(wpb.WorkerHeartbeat, msg.data, msg.subject))),
      bus.subscribe(firmwareWorkerSubjects.stopped, (msg) => {
        const stopped = decodeOrThrow(wpb.WorkerStopped, msg.data, msg.subject);
        const worker = this.workers.get(stopped.workerId);
        if (worker?.instance === stopped.instance) this.lose(worker, `compile worker ${worker.id} stopped`);
      }),
    ];
    this.sweeper = setInterval(() => this.sweep(), Math.max(50, Math.floor(this.options.timeoutMs / 4)));
  }

  async stop(): Promise<void> {
    clearInterval(this.sweeper);
    disposeAll(this.bindings);
    this.bindings = [];
    for (const worker of [...this.workers.values()]) this.lose(worker, 'the firmware service stopped');
  }

  detail(): Record<string, string> {
    const busy = [...this.workers.values()].filter((w) => w.run).length;
    return { workers: String(this.workers.size), busyWorkers: String(busy) };
  }

  async run(request: ExecutorRequest): Promise<ExecutorProcess> {
    const worker = [...this.workers.values()].find((w) => !w.run);
    if (!worker) {
      // The lanes start no more jobs than there are workers; a worker lost between pump and here ends up here.
      const run = new RemoteRun(request.jobId, '', async () => undefined);
      run.finish({ exitCode: null, signal: null, lost: true, error: new KilnError('unavailable', 'no compile worker is available', { job_id: request.jobId }) });
      return run;
    }
    const run = new RemoteRun(request.jobId, worker.id, (r) => this.cancel(r));
    worker.run = run;
    const subscriptions: BusSubscription[] = serveBus(
      this.options.bus,
      wpb.WorkerJobServiceDefinition,
      {
        output: async (m) => {
          await run.deliver(m.lines);
          return {};
        },
        exited: (m) => {
          run.finish({
            exitCode: m.exitCode ?? null,
            signal: m.signal || null,
            ...(m.errorCode ? { error: new KilnError(isErrorCode(m.errorCode) ? m.errorCode : 'internal_error', m.errorMessage, { job_id: m.jobId, worker: worker.id }) } : {}),
          });
          return {};
        },
      },
      { scope: request.jobId },
    );
    void run.exited.then(() => {
      disposeAll(subscriptions);
      if (worker.run === run) worker.run = undefined;
    });
    try {
      await this.worker(worker.id).run(request);
    } catch (err) {
      this.lose(worker, `compile worker ${worker.id} did not take the job: ${toKilnError(err).message}`);
    }
    return run;
  }

  /** The commands one worker serves. */
  private worker(workerId: string) {
    return busClient(this.options.bus, wpb.WorkerServiceDefinition, { scope: workerId, timeoutMs: WORKER_CALL_TIMEOUT_MS });
  }

  private onHeartbeat(beat: wpb.WorkerHeartbeat): void {
    if (!WORKER_ID_PATTERN.test(beat.workerId)) return this.options.logger.warn({ workerId: beat.workerId }, 'ignoring a heartbeat with an invalid worker id');
    const known = this.workers.get(beat.workerId);
    if (known && known.instance !== beat.instance) this.lose(known, `compile worker ${known.id} restarted`);
    const worker = this.workers.get(beat.workerId);
    if (worker) {
      worker.lastSeenMs = this.options.clock.now();
      return;
    }
    this.workers.set(beat.workerId, { id: beat.workerId, instance: beat.instance, lastSeenMs: this.options.clock.now(), pid: beat.pid, host: beat.host, run: undefined });
    this.options.logger.info({ workerId: beat.workerId, pid: beat.pid, host: beat.host }, 'compile worker joined');
    this.listener();
  }

  /** Worker gone: forget it, end its job as lost, tell the lanes the capacity changed. */
  private lose(worker: WorkerEntry, reason: string): void {
    if (this.workers.get(worker.id) !== worker) return;
    this.workers.delete(worker.id);
    this.options.logger.warn({ workerId: worker.id, jobId: worker.run?.jobId, reason }, 'compile worker lost');
    const run = worker.run;
    worker.run = undefined;
    if (run && !run.finished) {
      run.finish({ exitCode: null, signal: null, lost: true, error: new KilnError('unavailable', reason, { worker: worker.id, job_id: run.jobId }) });
      // If it is alive after all (a network split), it must not keep building a job that moved on.
      void this.worker(worker.id).cancel({ jobId: run.jobId }).catch(() => undefined);
    }
    this.listener();
  }

  private sweep(): void {
    const now = this.options.clock.now();
    for (const worker of [...this.workers.values()]) {
      if (now - worker.lastSeenMs > this.options.timeoutMs) this.lose(worker, `compile worker ${worker.id} sent no heartbeat for ${this.options.timeoutMs} ms`);
    }
  }

  private async cancel(run: RemoteRun): Promise<void> {
    try {
      await this.worker(run.workerId).cancel({ jobId: run.jobId });
    } catch (err) {
      const worker = this.workers.get(run.workerId);
      if (worker?.run === run) this.lose(worker, `compile worker ${run.workerId} did not answer a cancel: ${toKilnError(err).message}`);
      else run.finish({ exitCode: null, signal: null, lost: true, error: toKilnError(err) });
    }
  }
}
