import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FOLLOW_PAGE_LINES, followFromParts, type FollowOptions, type LogFollowEvent, type LogStoreApi, type ReadRange, logStorePb as pb } from '@kiln/contracts';
import { assertSafeId, invalidArgs, notFound } from '@kiln/core';
import type { Logger } from '@kiln/logging';
import type { EventStream, StreamControls } from '@kiln/streams';
import { JobLog, type CommittedBatch } from './job-log.js';
import { readLineWindow, readTail, scanLog } from './line-reader.js';
import type { LogStoreSettings } from './settings.js';

export interface LogStoreEvents {
  /** Lines that reached the file, in order per job. */
  committed(jobId: string, batch: CommittedBatch): void;
  closed(jobId: string, lineCount: number): void;
  deleted(jobId: string): void;
}

const LOG_SUFFIX = '.log';

/** What a torn line is cut to when a single line is absurdly long. */
const TRUNCATED_MARK = ' … [line truncated]';

/**
 * Append-only per-job logs under `<dir>/<jobId>.log`. This class is the store itself (in-process
 * API); the service puts it on the bus and on gRPC.
 */
export class LogStore implements LogStoreApi {
  private readonly open = new Map<string, Promise<JobLog>>();
  /** Closes and deletes in flight: reopening waits for them, so two handles never append to one file. */
  private readonly settling = new Map<string, Promise<unknown>>();
  private readonly followers = new Map<string, Set<StreamControls<LogFollowEvent>>>();
  /** Line counts of closed logs, keyed by size: reading a closed log twice does not rescan it. */
  private readonly closedCounts = new Map<string, { size: number; lineCount: number }>();

  constructor(
    readonly dir: string,
    private readonly settings: Pick<LogStoreSettings, 'flushIntervalMs' | 'flushBytes' | 'maxLineLength'>,
    private readonly logger: Logger,
    private readonly events?: Partial<LogStoreEvents>,
  ) {}

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  pathOf(jobId: string): string {
    return join(this.dir, `${assertSafeId('job_id', jobId)}${LOG_SUFFIX}`);
  }

  get openCount(): number {
    return this.open.size;
  }

  /** Append lines (an empty list just creates the log). Embedded newlines split a line in two. */
  async append(jobId: string, lines: readonly string[]): Promise<pb.AppendResponse> {
    const path = this.pathOf(jobId);
    const normalised = this.normalise(lines);
    const log = await this.openLog(jobId, path);
    return log.append(normalised);
  }

  /** Write what is pending for an open log now (tests, and callers that need durability at a point). */
  async flush(jobId: string): Promise<void> {
    const opening = this.open.get(assertSafeId('job_id', jobId));
    if (opening) await (await opening).flush();
  }

  async close(jobId: string): Promise<pb.CloseLogResponse> {
    const path = this.pathOf(jobId);
    const opening = this.open.get(jobId);
    let lineCount: number;
    if (opening) {
      this.open.delete(jobId);
      const log = await this.settle(jobId, opening.then(async (l) => (await l.close(), l)));
      lineCount = log.committedLines;
      this.closedCounts.set(jobId, { size: log.committedBytes, lineCount });
    } else {
      lineCount = (await this.closedInfo(jobId, path)).lineCount;
    }
    this.events?.closed?.(jobId, lineCount);
    this.notify(jobId, (c) => {
      c.pushPriority({ $case: 'closed', value: { jobId, lineCount } });
      c.end();
    });
    return { lineCount };
  }

  async read(jobId: string, range: ReadRange = {}, maxBytes = Number.POSITIVE_INFINITY): Promise<pb.ReadResponse> {
    const path = this.pathOf(jobId);
    const offset = checkCount('offset', range.offset ?? 0);
    const limit = checkCount('limit', range.limit ?? 0) || Number.POSITIVE_INFINITY;
    const tail = checkCount('tail', range.tail ?? 0);
    const opening = this.open.get(jobId);
    const log = opening ? await opening : undefined;
    const { lineCount, bytes } = log ? { lineCount: log.committedLines, bytes: log.committedBytes } : await this.closedInfo(jobId, path);
    const closed = log === undefined;
    try {
      if (tail > 0) {
        const lines = await readTail(path, Math.min(tail, lineCount), bytes, maxBytes);
        return { jobId, firstSeq: lineCount - lines.length, lines, lineCount, closed };
      }
      if (offset >= lineCount) return { jobId, firstSeq: offset, lines: [], lineCount, closed };
      const window = await readLineWindow(path, offset, Math.min(limit, lineCount - offset), bytes, maxBytes, log?.index);
      return { jobId, firstSeq: window.firstSeq, lines: window.lines, lineCount, closed };
    } catch (err) {
      // Deleted between the size check and the read.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound('job_id', jobId);
      throw err;
    }
  }

  follow(jobId: string, options: FollowOptions = {}): EventStream<LogFollowEvent> {
    assertSafeId('job_id', jobId);
    return followFromParts(
      jobId,
      options,
      (controls) => {
        let set = this.followers.get(jobId);
        if (!set) this.followers.set(jobId, (set = new Set()));
        set.add(controls);
        return {
          [Symbol.dispose]: () => {
            set.delete(controls);
            if (set.size === 0 && this.followers.get(jobId) === set) this.followers.delete(jobId);
          },
        };
      },
      (offset) => this.read(jobId, { offset, limit: FOLLOW_PAGE_LINES }),
    );
  }

  followerCount(jobId?: string): number {
    if (jobId !== undefined) return this.followers.get(jobId)?.size ?? 0;
    let n = 0;
    for (const set of this.followers.values()) n += set.size;
    return n;
  }

  async delete(jobId: string): Promise<boolean> {
    const path = this.pathOf(jobId);
    const opening = this.open.get(jobId);
    this.open.delete(jobId);
    this.closedCounts.delete(jobId);
    if (opening) await this.settle(jobId, opening.then((l) => l.discard()));
    let existed = true;
    try {
      await rm(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      existed = opening !== undefined;
    }
    this.events?.deleted?.(jobId);
    this.notify(jobId, (c) => c.end());
    return existed;
  }

  async list(): Promise<pb.LogInfo[]> {
    const names = (await readdir(this.dir)).filter((n) => n.endsWith(LOG_SUFFIX)).sort();
    const infos: pb.LogInfo[] = [];
    for (const name of names) {
      const jobId = name.slice(0, -LOG_SUFFIX.length);
      try {
        const s = await stat(join(this.dir, name));
        infos.push({ jobId, sizeBytes: s.size, modifiedAtMs: Math.floor(s.mtimeMs), open: this.open.has(jobId) });
      } catch {
        // Deleted between readdir and stat.
      }
    }
    return infos;
  }

  /** Flush and close every open log (service stop). */
  async closeAll(): Promise<void> {
    const logs = [...this.open.entries()];
    this.open.clear();
    for (const [, opening] of logs) await (await opening).close();
    for (const set of this.followers.values()) for (const c of set) c.end();
    this.followers.clear();
  }

  private openLog(jobId: string, path: string): Promise<JobLog> {
    let opening = this.open.get(jobId);
    if (!opening) {
      this.closedCounts.delete(jobId);
      const settling = this.settling.get(jobId) ?? Promise.resolve();
      opening = settling.then(() => JobLog.open(path, {
        flushIntervalMs: this.settings.flushIntervalMs,
        flushBytes: this.settings.flushBytes,
        onCommitted: (batch) => {
          this.events?.committed?.(jobId, batch);
          this.notify(jobId, (c) => c.pushOrTerminate({ $case: 'lines', value: { jobId, ...batch } }));
        },
        onTornTail: (bytes) => this.logger.warn({ jobId, bytes }, 'dropped a torn last line left by a crash'),
      }));
      this.open.set(jobId, opening);
      opening.catch(() => this.open.delete(jobId));
    }
    return opening;
  }

  private async settle<T>(jobId: string, work: Promise<T>): Promise<T> {
    const settled: Promise<unknown> = work.then(
      () => undefined,
      () => undefined,
    );
    this.settling.set(jobId, settled);
    void settled.then(() => {
      if (this.settling.get(jobId) === settled) this.settling.delete(jobId);
    });
    return work;
  }

  private async closedInfo(jobId: string, path: string): Promise<{ lineCount: number; bytes: number }> {
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound('job_id', jobId);
      throw err;
    }
    const cached = this.closedCounts.get(jobId);
    if (cached && cached.size === size) return { lineCount: cached.lineCount, bytes: size };
    const scan = await scanLog(path);
    this.closedCounts.set(jobId, { size: scan.completeBytes, lineCount: scan.lineCount });
    return { lineCount: scan.lineCount, bytes: scan.completeBytes };
  }

  private normalise(lines: readonly string[]): string[] {
    if (!Array.isArray(lines)) throw invalidArgs('lines', lines, 'must be a list of strings');
    const out: string[] = [];
    for (const line of lines) {
      if (typeof line !== 'string') throw invalidArgs('lines', line, 'every line must be a string');
      for (const part of line.includes('\n') ? line.split('\n') : [line]) {
        out.push(part.length > this.settings.maxLineLength ? part.slice(0, this.settings.maxLineLength) + TRUNCATED_MARK : part);
      }
    }
    return out;
  }

  private notify(jobId: string, fn: (controls: StreamControls<LogFollowEvent>) => void): void {
    const set = this.followers.get(jobId);
    if (set) for (const c of [...set]) fn(c);
  }
}

function checkCount(field: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw invalidArgs(field, value, 'must be a non-negative integer');
  return value;
}
