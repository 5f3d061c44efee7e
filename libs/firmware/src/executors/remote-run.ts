import { deferred } from '@kiln/core';
import type { ExecutorExit, ExecutorProcess } from './executor.js';

/**
 * A job running on a worker, as an ExecutorProcess: output batches arrive with `deliver` and are
 * acknowledged once the lanes have read every line of them (so the worker waits: backpressure);
 * `finish` ends the lines and settles the exit. Only the first `finish` counts.
 */
export class RemoteRun implements ExecutorProcess {
  private readonly batches: Array<{ lines: string[]; ack: () => void }> = [];
  private wake: (() => void) | undefined;
  private ended = false;
  private readonly exit = deferred<ExecutorExit>();
  readonly exited = this.exit.promise;
  readonly lines: AsyncIterable<string> = this.read();

  constructor(
    readonly jobId: string,
    readonly workerId: string,
    private readonly requestCancel: (run: RemoteRun) => Promise<void>,
  ) {}

  get finished(): boolean {
    return this.ended;
  }

  /** Resolves when the lanes have taken these lines (at once when the run already ended). */
  deliver(lines: string[]): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise((ack) => {
      this.batches.push({ lines, ack });
      this.wakeReader();
    });
  }

  finish(exit: ExecutorExit): void {
    if (this.ended) return;
    this.ended = true;
    this.exit.resolve(exit);
    this.wakeReader();
  }

  async terminate(): Promise<void> {
    if (!this.ended) await this.requestCancel(this);
    await this.exited;
  }

  private wakeReader(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private async *read(): AsyncGenerator<string> {
    for (;;) {
      const batch = this.batches.shift();
      if (batch) {
        yield* batch.lines;
        batch.ack();
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}
