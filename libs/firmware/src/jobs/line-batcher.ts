/** Lines per batch before the producer waits for the batch to be taken: bounds memory, back-pressures the child. */
const BATCH_LINES = 500;

/**
 * A job's output lines, handed to `send` in batches (every `batchMs`, or at once when a batch is
 * full), in order, one send at a time. `push` returns a promise only when a batch is full, so the
 * reader of the child's output slows down to the receiver's pace instead of buffering a flood. The
 * first failed send is kept in `failure`; later batches are still offered (`send` decides).
 */
export class LineBatcher {
  private batch: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void>;
  failure: unknown;

  constructor(
    private readonly batchMs: number,
    private readonly send: (lines: string[]) => Promise<void>,
    /** The first batch waits for this (e.g. the job's `started` announcement). */
    after: Promise<void> = Promise.resolve(),
  ) {
    this.sending = after;
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
    this.sending = this.sending.then(async () => {
      if (lines.length === 0) return;
      try {
        await this.send(lines);
      } catch (err) {
        this.failure ??= err;
      }
    });
    return this.sending;
  }
}
