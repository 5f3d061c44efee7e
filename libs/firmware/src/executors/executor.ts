import { mkdir } from 'node:fs/promises';
import { resolveBuildPaths, resolveConfigurationFile, type KilnError } from '@kiln/core';
import type { firmwarePb as pb } from '@kiln/contracts';
import type { Toolchain, ToolchainAction, ToolchainExit, ToolchainProcess } from '@kiln/toolchain';
import { JobType, typeName } from '../jobs/job.js';

/** What an executor needs to run one job: the job's identity and what to run. */
export interface ExecutorRequest {
  jobId: string;
  configuration: string;
  type: pb.JobType;
  port: string;
  newName: string;
  /** Set for a job sent to one receiver (remote_build/submit_job): it runs there or fails. */
  receiverPin?: string;
}

/**
 * Whether a job pinned to a receiver may start: `ready` (start it now), `wait` (the receiver is busy
 * with a compile of ours, or still connecting: stay queued), or `refused` with the error that fails it.
 */
export type PinnedState = { state: 'ready' | 'wait' } | { state: 'refused'; error: KilnError };

export interface ExecutorExit extends ToolchainExit {
  /**
   * The executor lost the job (its worker died or stopped): the job did not fail on its own merits,
   * so the lanes may run it again.
   */
  lost?: boolean;
}

/** A running job as the lanes see it, wherever it runs: its output lines, its exit, a way to stop it. */
export interface ExecutorProcess extends Omit<ToolchainProcess, 'exited' | 'pid'> {
  readonly exited: Promise<ExecutorExit>;
}

/**
 * Where a lane's toolchain jobs run. The lanes hand a job to `run` and read its lines and exit; they
 * never know whether it is a local child process or a worker elsewhere. `capacity` is how many jobs
 * may run at once now (local: a setting; workers: the live workers); when it changes, the executor
 * calls its capacity listener so the lanes can start what waits.
 */
export interface JobExecutor {
  readonly kind: string;
  readonly capacity: number;
  onCapacityChange(listener: () => void): void;
  run(request: ExecutorRequest): Promise<ExecutorProcess>;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Key figures for health output. */
  detail(): Record<string, string>;
  /** Executors that reach receivers answer for a job pinned to `pin`; others cannot run one. */
  pinnedState?(pin: string): PinnedState;
}

/** The toolchain action of a job (reset_build_env is Kiln's own wipe and never reaches a toolchain). */
export function actionFor(request: Pick<ExecutorRequest, 'type' | 'port' | 'newName'>): ToolchainAction {
  switch (request.type) {
    case JobType.JOB_TYPE_COMPILE:
      return { kind: 'compile' };
    case JobType.JOB_TYPE_UPLOAD:
      return { kind: 'upload', port: request.port };
    case JobType.JOB_TYPE_CLEAN:
      return { kind: 'clean' };
    case JobType.JOB_TYPE_INSTALL:
      return { kind: 'run', port: request.port };
    case JobType.JOB_TYPE_RENAME:
      return { kind: 'rename', newName: request.newName };
    default:
      throw new Error(`job type ${typeName(request.type)} cannot run on this toolchain`);
  }
}

/**
 * Start one job's toolchain process in the config dir, with the build dir from the ONE resolver.
 * Shared by the local executor and the compile worker, so both run a job the same way.
 */
export async function startToolchainJob(toolchain: Toolchain, configDir: string, request: ExecutorRequest): Promise<ToolchainProcess> {
  // Checked again when the job starts: the file may have become a link leading out since it was queued.
  await resolveConfigurationFile(configDir, request.configuration);
  const paths = resolveBuildPaths(configDir, request.configuration);
  const action = actionFor(request);
  await mkdir(paths.dataDir, { recursive: true });
  return toolchain.run(action, paths.yaml, { dataDir: paths.dataDir, cwd: configDir });
}
