import { listening, type Bus } from '@kiln/bus';
import { assertSafeId, KilnError } from '@kiln/core';
import { streamLog, type EventStream, type StreamControls } from '@kiln/streams';
import { busClient } from './bus-binding.js';
import { decodeOrThrow } from './codec.js';
import * as pb from './gen/kiln/logstore/v1/logstore.js';
import { logStoreSubjects } from './subjects.js';

export type LogFollowEvent = NonNullable<pb.FollowResponse['event']>;

export interface ReadRange {
  offset?: number;
  /** 0 or absent: no limit. */
  limit?: number;
  /** The last `tail` lines; wins over offset/limit. */
  tail?: number;
}

export interface FollowOptions {
  /** Start at this line number instead of 0 (resume after a dropped stream). */
  fromSeq?: number;
  signal?: AbortSignal;
}

/**
 * The log store's contract. The service implements it in-process; the bus and gRPC clients
 * implement it remotely (both over LogStoreService in logstore.proto), so a caller never knows
 * where the store runs.
 */
export interface LogStoreApi {
  append(jobId: string, lines: readonly string[]): Promise<pb.AppendResponse>;
  close(jobId: string): Promise<pb.CloseLogResponse>;
  read(jobId: string, range?: ReadRange): Promise<pb.ReadResponse>;
  /** History then live batches, then one `closed` event. Unknown job → the first read rejects with not_found. */
  follow(jobId: string, options?: FollowOptions): EventStream<LogFollowEvent>;
  delete(jobId: string): Promise<boolean>;
  list(): Promise<pb.LogInfo[]>;
}

/** History is fetched in pages so following a huge log never loads it whole. */
export const FOLLOW_PAGE_LINES = 2000;

/**
 * Follow built from primitives any transport has: live events (attach before reading) and a paged
 * read of history, merged by `streamLog` (a batch both in the read and on the live feed is delivered
 * once, history strictly precedes live).
 */
export function followFromParts(
  jobId: string,
  options: FollowOptions,
  attachLive: (controls: StreamControls<LogFollowEvent>) => Disposable,
  readPage: (offset: number) => Promise<pb.ReadResponse>,
): EventStream<LogFollowEvent> {
  async function* history(): AsyncGenerator<LogFollowEvent> {
    let offset = options.fromSeq ?? 0;
    for (;;) {
      const page = await readPage(offset);
      if (page.lines.length > 0) yield { $case: 'lines', value: { jobId, firstSeq: page.firstSeq, lines: page.lines } };
      offset = page.firstSeq + page.lines.length;
      if (offset >= page.lineCount) {
        if (page.closed) yield { $case: 'closed', value: { jobId, lineCount: page.lineCount } };
        return;
      }
    }
  }

  return streamLog<LogFollowEvent>({
    attach: attachLive,
    snapshot: history,
    ...(options.signal ? { signal: options.signal } : {}),
    fromSeq: () => options.fromSeq ?? 0,
    // The first `closed` (from history or live) ends the stream; nothing may follow it.
    itemOf: (event) => (event.$case === 'closed' ? { log: jobId, last: true } : { log: jobId, lines: [event.value.firstSeq, event.value.firstSeq + event.value.lines.length] }),
    skipLines: (event, skip) => (event.$case === 'lines' ? { $case: 'lines', value: { jobId, firstSeq: event.value.firstSeq + skip, lines: event.value.lines.slice(skip) } } : event),
  });
}

/**
 * A job's output as readers get it (get_job_output, get_job, the history of follow_job): the last
 * 2000 lines; upstream keeps as many for a finished job.
 */
export const OUTPUT_TAIL_LINES = 2000;

/**
 * The line shown in place of what was trimmed. `elided` is cumulative across every trim of a job
 * (in-flight and final), so the reader sees the true total dropped, not just the last trim's share.
 * The wording matches upstream's notice so anyone who knows it recognises it.
 */
export function trimNotice(elided: number): string {
  return `... [output trimmed: ${elided} earlier line(s) elided]`;
}

export interface OutputTail {
  /** The last OUTPUT_TAIL_LINES lines, behind a trim notice when earlier ones were left out. */
  lines: string[];
  /** Lines in the log; the next line written is number `totalLines`. */
  totalLines: number;
  /** `lines` starts with the trim notice (which is not a line of the log). */
  trimmed: boolean;
  /** The log was complete when read (its writer closed it). */
  closed: boolean;
}

/** A job's output from its log; a job that has written nothing yet (no log) has none. */
export async function readOutputTail(logs: LogStoreApi, jobId: string): Promise<OutputTail> {
  try {
    const tail = await logs.read(jobId, { tail: OUTPUT_TAIL_LINES });
    const elided = tail.lineCount - tail.lines.length;
    return { lines: elided > 0 ? [trimNotice(elided), ...tail.lines] : tail.lines, totalLines: tail.lineCount, trimmed: elided > 0, closed: tail.closed };
  } catch (err) {
    if (err instanceof KilnError && err.code === 'not_found') return { lines: [], totalLines: 0, trimmed: false, closed: false };
    throw err;
  }
}

/** The log store over the bus: what a service uses when it does not host the store itself. */
export function createLogStoreBusClient(bus: Bus, timeoutMs?: number): LogStoreApi {
  const store = busClient(bus, pb.LogStoreServiceDefinition, timeoutMs === undefined ? {} : { timeoutMs });
  const read = (jobId: string, range: ReadRange = {}) => store.read({ jobId, offset: range.offset ?? 0, limit: range.limit ?? 0, tail: range.tail ?? 0 });
  return {
    append: (jobId, lines) => store.append({ jobId, lines: [...lines] }),
    close: (jobId) => store.closeLog({ jobId }),
    read,
    follow(jobId, options = {}) {
      assertSafeId('job_id', jobId);
      return followFromParts(
        jobId,
        options,
        (controls) =>
          listening(bus, [logStoreSubjects.lines(jobId), logStoreSubjects.closed(jobId), logStoreSubjects.deleted(jobId)], (msg) => {
            if (msg.subject === logStoreSubjects.closed(jobId)) {
              controls.pushPriority({ $case: 'closed', value: decodeOrThrow(pb.LogClosed, msg.data, msg.subject) });
              controls.end();
            } else if (msg.subject === logStoreSubjects.deleted(jobId)) {
              controls.end();
            } else {
              controls.pushOrTerminate({ $case: 'lines', value: decodeOrThrow(pb.LinesAppended, msg.data, msg.subject) });
            }
          }),
        (offset) => read(jobId, { offset, limit: FOLLOW_PAGE_LINES }),
      );
    },
    delete: async (jobId) => (await store.delete({ jobId })).deleted,
    list: async () => (await store.list({})).logs,
  };
}
