import { rm } from 'node:fs/promises';
import type { Bus } from '@kiln/bus';
import { encode, firmwarePb as pb, firmwareSubjects, type LogStoreApi } from '@kiln/contracts';
import { deferred, isNoSpaceError, localBuildRoot } from '@kiln/core';
import type { Logger } from '@kiln/logging';
import { JobOutput, NO_ESPHOME_MODULE_HINT } from '../output/index.js';
import { parseProgress } from '@kiln/toolchain';
import type { ExecutorProcess, JobExecutor } from '../executors/executor.js';
import { JobType, typeName, type Job } from './job.js';
import { OutputPipe } from './output-pipe.js';

export interface RunOutcome {
  status: pb.JobStatus;
  exitCode?: number;
  error: string;
  /** The executor lost the job (its worker died): it did not fail on its own merits. */
  lost?: boolean;
}

export interface RunnerDeps {
  configDir: string;
  /** Where this job's toolchain process runs (the lane's executor). */
  executor: JobExecutor;
  logs: LogStoreApi;
  bus: Bus;
  logger: Logger;
  outputBatchMs: number;
}

/**
 * One running job: the child process (or, for reset_build_env, Kiln's own wipe), its output
 * (capped in memory, every line to the log store), progress, and the outcome. Cancellation wins
 * over failure: a job whose cancel was requested ends cancelled whatever its exit code.
 */
export class JobRun {
  readonly output = new JobOutput();
  private process: ExecutorProcess | undefined;
  private cancelReason: string | undefined;
  private progress = 0;
  private readonly handedOver = deferred<void>();

  constructor(
    readonly job: Job,
    private readonly deps: RunnerDeps,
    /** A first line for the log when this is a re-run (after a restart or a lost worker). */
    private readonly notice: string | undefined,
  ) {}

  /**
   * Settles once the executor has the job (a local process: spawned and its process group recorded),
   * or the job never got that far. `started` waits for it, so whoever sees a job running can count
   * on its process being reaped after a crash.
   */
  get placed(): Promise<void> {
    return this.handedOver.promise;
  }

  /** Ask the process tree to stop; the run then ends cancelled (with `reason` as its error). */
  cancel(reason: string): void {
    this.cancelReason ??= reason;
    void this.process?.terminate();
  }

  /** Stop the process without deciding the job's fate (service stop: the job re-runs on restore). */
  async abandon(): Promise<void> {
    await this.process?.terminate();
  }

  /** `announced` resolves once `started` is announced: no output reaches the log store (and its followers) before it. */
  async run(announced: Promise<void>, onProgress: (progress: number) => void): Promise<RunOutcome> {
    const pipe = new OutputPipe(this.job.id, this.deps.logs, this.deps.outputBatchMs, announced);
    const emit = async (line: string): Promise<void> => {
      this.output.append(line);
      await pipe.push(line);
    };
    // Kiln's own wipe has no process to hand over.
    if (this.job.type === JobType.JOB_TYPE_RESET_BUILD_ENV) this.handedOver.resolve();
    let outcome: RunOutcome;
    try {
      if (this.notice !== undefined) await emit(this.notice);
      outcome = this.job.type === JobType.JOB_TYPE_RESET_BUILD_ENV ? await this.resetBuildEnv(emit) : await this.runToolchain(emit, onProgress);
    } catch (err) {
      outcome = { status: pb.JobStatus.JOB_STATUS_FAILED, error: (err as Error).message };
    } finally {
      this.handedOver.resolve();
    }
    const logFailure = await pipe.close();
    if (logFailure) this.deps.logger.warn({ jobId: this.job.id, err: logFailure }, 'job output could not be fully written to the log store');
    if (this.cancelReason !== undefined) {
      return { status: pb.JobStatus.JOB_STATUS_CANCELLED, ...(outcome.exitCode !== undefined ? { exitCode: outcome.exitCode } : {}), error: this.cancelReason };
    }
    if (isNoSpaceError(logFailure)) return blameStorage(outcome, (logFailure as Error).message);
    return this.output.verdicts.noSpace ? blameStorage(outcome, 'no space left on device (the toolchain could not write its files)') : outcome;
  }

  private async runToolchain(emit: (line: string) => Promise<void>, onProgress: (p: number) => void): Promise<RunOutcome> {
    const { id: jobId, configuration, type, port, newName, receiverPin } = this.job;
    const progressKind = type === JobType.JOB_TYPE_UPLOAD ? 'upload' : 'compile';
    if (this.cancelReason !== undefined) return { status: pb.JobStatus.JOB_STATUS_CANCELLED, error: this.cancelReason };
    let proc: ExecutorProcess;
    try {
      proc = await this.deps.executor.run({ jobId, configuration, type, port, newName, ...(receiverPin ? { receiverPin } : {}) });
    } finally {
      this.handedOver.resolve();
    }
    this.process = proc;
    if (this.cancelReason !== undefined) void proc.terminate();
    for await (const line of proc.lines) {
      await emit(line);
      const progress = parseProgress(line, progressKind);
      if (progress !== undefined && Math.floor(progress) > this.progress) {
        this.progress = Math.floor(progress);
        onProgress(this.progress);
      }
    }
    const exit = await proc.exited;
    if (exit.lost) {
      // Said in the job's log too, so a reader of the log sees why the output stops (and restarts).
      await emit(`... [${exit.error?.message ?? 'the job was lost by its executor'}]`);
      return { status: pb.JobStatus.JOB_STATUS_FAILED, error: exit.error?.message ?? 'lost', lost: true };
    }
    if (exit.error) return { status: pb.JobStatus.JOB_STATUS_FAILED, error: exit.error.message };
    if (exit.exitCode === 0) return { status: pb.JobStatus.JOB_STATUS_COMPLETED, exitCode: 0, error: '' };
    const error = this.output.verdicts.noEsphomeModule
      ? NO_ESPHOME_MODULE_HINT
      : exit.exitCode === null
        ? `esphome ${typeName(this.job.type)} was killed by ${exit.signal ?? 'a signal'}`
        : `esphome ${typeName(this.job.type)} exited with code ${exit.exitCode}`;
    return { status: pb.JobStatus.JOB_STATUS_FAILED, ...(exit.exitCode === null ? {} : { exitCode: exit.exitCode }), error };
  }

  /** Kiln wipes the build tree itself: it works with any toolchain version, and the gate guarantees no upload reads it now. */
  private async resetBuildEnv(emit: (line: string) => Promise<void>): Promise<RunOutcome> {
    const buildRoot = localBuildRoot(this.deps.configDir);
    await emit(`INFO Removing ${buildRoot}`);
    await rm(buildRoot, { recursive: true, force: true });
    await emit('INFO Build environment reset');
    return { status: pb.JobStatus.JOB_STATUS_COMPLETED, exitCode: 0, error: '' };
  }
}

/**
 * A failed job whose real cause is a full disk says so first, instead of only "exited with code 1":
 * the exit code is what the toolchain did once it could not write (its build, or Kiln its log/state).
 */
export function blameStorage(outcome: RunOutcome, cause: string): RunOutcome {
  if (outcome.status !== pb.JobStatus.JOB_STATUS_FAILED || outcome.lost || outcome.error.startsWith(cause)) return outcome;
  return { ...outcome, error: outcome.error ? `${cause} (${outcome.error})` : cause };
}

export function publishProgress(bus: Bus, job: Job): void {
  bus.publish(firmwareSubjects.event('progressed'), encode(pb.JobProgressed, { jobId: job.id, configuration: job.configuration, progress: job.progress }));
}
