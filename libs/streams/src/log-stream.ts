import { streamEvents } from './stream-events.js';
import type { EventStream, StreamOptions } from './types.js';

/**
 * What an item is to a log stream. `lines`: it carries the log's lines numbered [from, to).
 * `rank`: it is a state of whatever writes the log (queued < running < finished); a state older
 * than one already delivered for that log is dropped. `last`: the stream ends after it.
 */
export interface LogItem {
  readonly log: string;
  readonly lines?: readonly [from: number, to: number];
  readonly rank?: number;
  readonly last?: boolean;
}

export interface LogStreamOptions<T> extends StreamOptions<T> {
  /** What an item is (history and live alike); undefined: delivered as it is. */
  itemOf(item: T): LogItem | undefined;
  /** The item without its first `skip` lines (0 < skip < its line count). */
  skipLines(item: T, skip: number): T;
  /** Per log, the first line number to deliver (resuming a follow); 0 when absent. */
  fromSeq?: (log: string) => number;
}

/**
 * History then live over numbered log lines and the states of their writer: the ONE place that
 * merges a log's history with its live batches. Lines are delivered once each, in order, per log
 * (a batch both in the history and on the live feed, or partly, is cut to what is new), and a
 * state older than one already delivered is dropped, so a snapshot's state is never followed by a
 * stale live one. Sources keep their own order: a log's lines are written only after its writer
 * announced `started`, and its writer announces the end only once its lines are committed, so a
 * consumer sees lines after `started` and before the end as long as the snapshot reads the lines
 * first and the state after them (see the gateway's follow_job).
 */
export function streamLog<T>(options: LogStreamOptions<T>): EventStream<T> {
  const { itemOf, skipLines, fromSeq, ...streamOptions } = options;
  const next = new Map<string, number>();
  const ranks = new Map<string, number>();
  const inner = streamEvents<T>(streamOptions);

  /** The item as it is, cut to its new lines, or undefined when it repeats what was delivered. */
  function admit(item: T, at: LogItem): T | undefined {
    if (at.rank !== undefined) {
      const known = ranks.get(at.log);
      if (known !== undefined && at.rank < known) return undefined;
      ranks.set(at.log, at.rank);
    }
    if (!at.lines) return item;
    const [from, to] = at.lines;
    const expected = next.get(at.log) ?? fromSeq?.(at.log) ?? 0;
    if (to <= expected) return undefined;
    next.set(at.log, to);
    const skip = expected - from;
    return skip > 0 ? skipLines(item, skip) : item;
  }

  async function* merged(): AsyncGenerator<T, void, undefined> {
    try {
      for await (const item of inner) {
        const at = itemOf(item);
        if (!at) {
          yield item;
          continue;
        }
        const admitted = admit(item, at);
        if (admitted !== undefined) yield admitted;
        if (at.last && admitted !== undefined) return;
      }
    } finally {
      inner[Symbol.dispose]();
    }
  }

  return asEventStream(merged(), inner);
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
