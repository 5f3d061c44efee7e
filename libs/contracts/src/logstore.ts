import { listening, type Bus } from '@kiln/bus';
import { assertSafeId } from '@kiln/core';
import { streamEvents, type EventStream, type StreamControls } from '@kiln/streams';
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
 * read of history. Lines are deduplicated by sequence number, so a batch that is both in the read
 * and on the live feed is delivered once, and history strictly precedes live.
 */
export function followFromParts(
  jobId: string,
  options: FollowOptions,
  attachLive: (controls: StreamControls<LogFollowEvent>) => Disposable,
  readPage: (offset: number) => Promise<pb.ReadResponse>,
): EventStream<LogFollowEvent> {
  let nextSeq = options.fromSeq ?? 0;

  async function* history(): AsyncGenerator<LogFollowEvent> {
    let offset = nextSeq;
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

  const inner = streamEvents<LogFollowEvent>({
    attach: attachLive,
    snapshot: history,
    ...(options.signal ? { signal: options.signal } : {}),
  });

  async function* deduplicated(): AsyncGenerator<LogFollowEvent, void, undefined> {
    try {
      for await (const event of inner) {
        if (event.$case === 'closed') {
          // The first `closed` (from history or live) ends the stream; nothing may follow it.
          yield event;
          return;
        }
        const { firstSeq, lines } = event.value;
        const end = firstSeq + lines.length;
        if (end <= nextSeq) continue;
        const skip = Math.max(0, nextSeq - firstSeq);
        nextSeq = end;
        yield skip === 0 ? event : { $case: 'lines', value: { jobId, firstSeq: firstSeq + skip, lines: lines.slice(skip) } };
      }
    } finally {
      inner[Symbol.dispose]();
    }
  }

  return asEventStream(deduplicated(), inner);
}

/** Give a generator that wraps a stream the stream's dispose and counters. */
export function asEventStream<T>(generator: AsyncGenerator<T, void, undefined>, inner: EventStream<unknown>): EventStream<T> {
  return Object.defineProperties(generator, {
    [Symbol.dispose]: {
      value: () => {
        inner[Symbol.dispose]();
        void generator.return(undefined);
      },
    },
    dropped: { get: () => inner.dropped },
    released: { get: () => inner.released },
  }) as unknown as EventStream<T>;
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
