import { describe, expect, it } from 'vitest';
import { streamLog, type LogItem, type StreamControls } from '../src/index.js';

/** A log batch, a writer state, or anything else. */
type Item = { kind: 'lines'; log: string; from: number; lines: string[] } | { kind: 'state'; log: string; rank: number; last?: boolean } | { kind: 'other' };

const itemOf = (item: Item): LogItem | undefined =>
  item.kind === 'lines'
    ? { log: item.log, lines: [item.from, item.from + item.lines.length] }
    : item.kind === 'state'
      ? { log: item.log, rank: item.rank, ...(item.last ? { last: true } : {}) }
      : undefined;
const skipLines = (item: Item, skip: number): Item => (item.kind === 'lines' ? { ...item, from: item.from + skip, lines: item.lines.slice(skip) } : item);
const lines = (log: string, from: number, ...text: string[]): Item => ({ kind: 'lines', log, from, lines: text });

function open(history: Item[], fromSeq?: number) {
  let controls!: StreamControls<Item>;
  const stream = streamLog<Item>({
    attach: (c) => {
      controls = c;
      return { [Symbol.dispose]: () => undefined };
    },
    snapshot: async function* () {
      yield* history;
    },
    itemOf,
    skipLines,
    ...(fromSeq === undefined ? {} : { fromSeq: () => fromSeq }),
  });
  return { stream, controls };
}

async function drain(stream: AsyncIterable<Item>): Promise<Item[]> {
  const got: Item[] = [];
  for await (const item of stream) got.push(item);
  return got;
}

describe('streamLog: history then live over numbered lines and writer states', () => {
  it('delivers each line once: live batches the history covered are dropped or cut to what is new', async () => {
    const { stream, controls } = open([lines('a', 0, 'l0', 'l1', 'l2')]);
    controls.push(lines('a', 0, 'l0', 'l1')); // wholly in the history
    controls.push(lines('a', 2, 'l2', 'l3')); // partly
    controls.push(lines('a', 4, 'l4'));
    controls.end();
    expect(await drain(stream)).toEqual([lines('a', 0, 'l0', 'l1', 'l2'), lines('a', 3, 'l3'), lines('a', 4, 'l4')]);
  });

  it('keeps line numbers per log and starts each at fromSeq', async () => {
    const { stream, controls } = open([], 2);
    controls.push(lines('a', 0, 'a0', 'a1', 'a2'));
    controls.push(lines('b', 1, 'b1', 'b2', 'b3'));
    controls.push(lines('a', 3, 'a3'));
    controls.end();
    expect(await drain(stream)).toEqual([lines('a', 2, 'a2'), lines('b', 2, 'b2', 'b3'), lines('a', 3, 'a3')]);
  });

  it('drops a state older than one already delivered for its log, and ends after the last item', async () => {
    const { stream, controls } = open([{ kind: 'state', log: 'a', rank: 1 }]);
    controls.pushPriority({ kind: 'state', log: 'a', rank: 0 }); // queued, seen before the snapshot's running
    controls.pushPriority({ kind: 'state', log: 'b', rank: 0 }); // another log's
    controls.push({ kind: 'other' });
    controls.push(lines('a', 0, 'l0'));
    controls.pushPriority({ kind: 'state', log: 'a', rank: 2, last: true });
    controls.push(lines('a', 1, 'after the end'));
    expect(await drain(stream)).toEqual([
      { kind: 'state', log: 'a', rank: 1 },
      { kind: 'state', log: 'b', rank: 0 },
      { kind: 'other' },
      lines('a', 0, 'l0'),
      { kind: 'state', log: 'a', rank: 2, last: true },
    ]);
    expect(stream.released).toBe(true);
  });

  it('a last item that repeats the history ends the stream too (a history end and a live end)', async () => {
    const { stream, controls } = open([lines('a', 0, 'l0'), { kind: 'state', log: 'a', rank: 2, last: true }]);
    controls.pushPriority({ kind: 'state', log: 'a', rank: 2, last: true });
    expect(await drain(stream)).toEqual([lines('a', 0, 'l0'), { kind: 'state', log: 'a', rank: 2, last: true }]);
  });
});
