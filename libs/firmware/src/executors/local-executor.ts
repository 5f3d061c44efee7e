import type { Toolchain } from '@kiln/toolchain';
import { startToolchainJob, type ExecutorProcess, type ExecutorRequest, type JobExecutor } from './executor.js';

/** Jobs run as child processes of this process (the default; the upload lane always runs locally). */
export class LocalExecutor implements JobExecutor {
  readonly kind = 'local';

  constructor(
    private readonly toolchain: Toolchain,
    private readonly configDir: string,
    readonly capacity: number,
  ) {}

  onCapacityChange(): void {
    // A local executor's capacity is a setting: it never changes while running.
  }

  run(request: ExecutorRequest): Promise<ExecutorProcess> {
    return startToolchainJob(this.toolchain, this.configDir, request);
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {}

  detail(): Record<string, string> {
    return {};
  }
}
