import type { LogStoreApi } from '@kiln/contracts';
import { LineBatcher } from './line-batcher.js';

/**
 * Ships a running job's output to the log store in batches, at the log store's pace. The log store
 * owns the output from then on: it announces each committed batch (`kiln.logstore.lines.<job>`)
 * and answers reads and follows, so nothing here publishes the lines again. A log store outage must not kill the build: the failure is kept
 * (and reported by `close`), the in-memory view still has the lines.
 */
export class OutputPipe extends LineBatcher {
  constructor(
    private readonly jobId: string,
    private readonly logs: LogStoreApi,
    batchMs: number,
    /** The first batch waits for this (the job's `started` announcement). */
    after: Promise<void>,
  ) {
    super(
      batchMs,
      async (lines) => {
        await logs.append(jobId, lines);
      },
      after,
    );
  }

  /** Flush what is left and mark the job's log complete. Returns the first log store failure, if any. */
  async close(): Promise<unknown> {
    await this.flush();
    try {
      await this.logs.close(this.jobId);
    } catch (err) {
      this.failure ??= err;
    }
    return this.failure;
  }
}
