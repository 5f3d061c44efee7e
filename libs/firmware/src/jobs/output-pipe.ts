import type { Bus } from '@kiln/bus';
import { encode, firmwarePb as pb, firmwareSubjects, type LogStoreApi } from '@kiln/contracts';

/** Lines per batch before the pipe waits for the log store: bounds memory and gives the child backpressure. */
const BATCH_LINES = 500;

/**
 * Ships a running job's output to the log store (every line) and to the bus (JobOutputAppended) in
 * batches. `push` returns a promise only when the batch is full, so the reader of the child's output
 * slows down to the log store's pace instead of buffering a flood.
 */
export class OutputPipe {
  private batch: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void>;
  private failure: unknown;

  constructor(
    private readonly jobId: string,
    private readonly logs: LogStoreApi,
    private readonly bus: Bus,
    private readonly batchMs: number,
    /** The first batch waits for this (the job's `started` announcement). */
    after: Promise<void>,
  ) {
    this.flushing = after;
  }

  push(line: string): Promise<void> | undefined {
    this.batch.push(line);
    if (this.batch.length >= BATCH_LINES) return this.flush();
    this.timer ??= setTimeout(() => void this.flush(), this.batchMs);
    return undefined;
  }

  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const lines = this.batch;
    this.batch = [];
    this.flushing = this.flushing.then(async () => {
      if (lines.length === 0) return;
      try {
        const { firstSeq } = await this.logs.append(this.jobId, lines);
        this.bus.publish(firmwareSubjects.event('output'), encode(pb.JobOutputAppended, { jobId: this.jobId, firstSeq, lines }));
      } catch (err) {
        // A log store outage must not kill the build; the in-memory view still has the lines.
        this.failure ??= err;
      }
    });
    return this.flushing;
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
