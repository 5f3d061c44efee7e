import { KilnError } from '@kiln/core';
import type { RunningGroups, Toolchain } from '@kiln/toolchain';
import { startToolchainJob, type ExecutorProcess, type ExecutorRequest, type JobExecutor } from './executor.js';

/**
 * Jobs run as child processes of this process (the default; the upload lane always runs locally).
 * Each one's process group is recorded in `groups` before the lanes get it, and forgotten once the
 * whole group is gone, so a process that outlives a killed host is reaped at the next start.
 */
export class LocalExecutor implements JobExecutor {
  readonly kind = 'local';

  constructor(
    private readonly toolchain: Toolchain,
    private readonly configDir: string,
    readonly capacity: number,
    private readonly groups: RunningGroups,
  ) {}

  onCapacityChange(): void {
    // A local executor's capacity is a setting: it never changes while running.
  }

  async run(request: ExecutorRequest): Promise<ExecutorProcess> {
    const proc = await startToolchainJob(this.toolchain, this.configDir, request);
    if (proc.pid === undefined) return proc; // never started: its exit carries the spawn error
    try {
      await this.groups.add(request.jobId, proc.pid);
    } catch (err) {
      // A process nobody could reap after a crash is not run at all.
      await proc.terminate();
      throw new KilnError('unavailable', `could not record the toolchain process of job ${request.jobId} in ${this.groups.dir}: ${(err as Error).message}`, { job_id: request.jobId, dir: this.groups.dir }, { cause: err });
    }
    const exited = proc.exited.finally(() => this.groups.remove(request.jobId).catch(() => undefined));
    return {
      lines: proc.lines,
      exited,
      terminate: async () => {
        await proc.terminate();
        await exited; // the record is gone too once a stop returns
      },
    };
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {}

  detail(): Record<string, string> {
    return {};
  }
}
