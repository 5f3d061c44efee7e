import { open, truncate, type FileHandle } from 'node:fs/promises';
import { storageHealth, writeFailure } from '@kiln/core';
import { LineIndex, scanLog } from './line-reader.js';

export interface CommittedBatch {
  firstSeq: number;
  lines: string[];
}

export interface JobLogOptions {
  flushIntervalMs: number;
  flushBytes: number;
  /** Called after each write with the lines it made durable, in order. */
  onCommitted(batch: CommittedBatch): void;
  /** A torn tail from a crash was cut off when the log was reopened. */
  onTornTail(bytes: number): void;
}

/**
 * One job's open log: appends are buffered and written in batches (one write per flush), and
 * only lines that reached the file are counted as committed and announced. Memory per log is
 * bounded by flushBytes: past it, append waits for the write.
 */
export class JobLog {
  /** Lines that reached the file. */
  committedLines = 0;
  committedBytes = 0;
  /** Lines accepted, including those still pending. */
  assignedLines = 0;
  readonly index: LineIndex;
  private pending: string[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  /** A timer-driven flush that failed: reported to the next append (there was no caller to tell). */
  private failure: unknown;
  private closed = false;

  private constructor(
    private readonly path: string,
    private readonly handle: FileHandle,
    private readonly options: JobLogOptions,
    state: { lineCount: number; bytes: number; index: LineIndex },
  ) {
    this.committedLines = this.assignedLines = state.lineCount;
    this.committedBytes = state.bytes;
    this.index = state.index;
  }

  /** Open for appending; an existing file is scanned and a torn last line (crash mid-write) is cut off. */
  static async open(path: string, options: JobLogOptions): Promise<JobLog> {
    let state = { lineCount: 0, bytes: 0, index: new LineIndex() };
    try {
      const scan = await scanLog(path);
      if (scan.completeBytes < scan.size) {
        await truncate(path, scan.completeBytes);
        options.onTornTail(scan.size - scan.completeBytes);
      }
      state = { lineCount: scan.lineCount, bytes: scan.completeBytes, index: scan.index };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const handle = await open(path, 'a', 0o640);
    return new JobLog(path, handle, options, state);
  }

  /** Accept lines; resolves with their sequence numbers once they are buffered (or written, under pressure). */
  async append(lines: readonly string[]): Promise<{ firstSeq: number; lineCount: number }> {
    if (this.failure !== undefined) {
      const failure = this.failure;
      this.failure = undefined;
      throw failure;
    }
    const firstSeq = this.assignedLines;
    for (const line of lines) {
      this.pending.push(line);
      this.pendingBytes += line.length + 1;
    }
    this.assignedLines += lines.length;
    // Past flushBytes the appender waits for the write: pending lines stay few and short-lived, so
    // memory is bounded by about two batches whatever a build prints, and lines die young (cheap GC).
    if (this.pendingBytes >= this.options.flushBytes) await this.flush();
    else this.timer ??= setTimeout(() => void this.flush().catch((err: unknown) => (this.failure ??= err)), this.options.flushIntervalMs);
    return { firstSeq, lineCount: lines.length };
  }

  /** Write everything pending; concurrent callers share the in-flight write. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.writing) await this.writing;
    if (this.pending.length === 0) return;
    const lines = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    this.writing = this.write(lines);
    try {
      await this.writing;
    } finally {
      this.writing = undefined;
    }
  }

  private async write(lines: string[]): Promise<void> {
    const text = `${lines.join('\n')}\n`;
    const buffer = Buffer.from(text, 'utf8');
    try {
      const { bytesWritten } = await this.handle.write(buffer, 0, buffer.length, null);
      // A full disk can take part of a batch: that is a failed write too.
      if (bytesWritten < buffer.length) throw Object.assign(new Error(`short write to ${this.path}`), { code: 'ENOSPC' });
    } catch (err) {
      // Cut a partial batch off again, so the file keeps ending on a whole committed line.
      await this.handle.truncate(this.committedBytes).catch(() => undefined);
      throw writeFailure(this.path, err);
    }
    storageHealth.succeeded(this.path);
    const firstSeq = this.committedLines;
    // Index offsets as lines commit, so later range reads can seek.
    let offset = this.committedBytes;
    let lineNumber = firstSeq;
    for (const line of lines) {
      offset += Buffer.byteLength(line) + 1;
      lineNumber++;
      this.index.record(lineNumber, offset);
    }
    this.committedLines += lines.length;
    this.committedBytes = offset;
    this.options.onCommitted({ firstSeq, lines });
  }

  /** Flush and release the file; the file is released even when the last write fails (a full disk). */
  async close(): Promise<void> {
    this.closed = true;
    try {
      await this.flush();
    } finally {
      await this.handle.close();
    }
  }

  /** Drop pending lines and release the file (the log is being deleted). */
  async discard(): Promise<void> {
    clearTimeout(this.timer);
    this.pending = [];
    this.pendingBytes = 0;
    this.closed = true;
    while (this.writing) await this.writing.catch(() => undefined);
    await this.handle.close();
  }
}
