import { deferred } from '@kiln/core';
import { describe, expect, it } from 'vitest';
import { StreamBackpressureError, type ByteBound, type DropNotice, type StreamOptions } from '../src/index.js';
import { consume, controlled, flush } from './support.js';

/** Output of a job as a batch of lines, a job's state change, or the notice of lines a follower missed. */
type Item = { out: string; job: string; lines: number } | { state: string } | { skipped: number; job: string };

const LINE_BYTES = 100;
const out = (out: string, lines = 10, job = 'j1'): Item => ({ out, job, lines });
const state = (name: string): Item => ({ state: name });

const bytesOf = (item: Item): number => ('out' in item ? item.lines * LINE_BYTES : 50);
const notice: DropNotice<Item> = {
  tally: (item) => ('out' in item ? { key: item.job, count: item.lines } : undefined),
  notice: (job, count) => ({ skipped: count, job }),
};
const bounded = (max: number, downstream?: () => number, extra: Omit<StreamOptions<Item>, 'attach'> = {}) => {
  const bytes: ByteBound<Item> = { max, sizeOf: bytesOf, ...(downstream ? { downstream } : {}) };
  return controlled<Item>({ bytes, dropNotice: notice, ...extra });
};
const drain = async (stream: AsyncIterable<Item>): Promise<Item[]> => {
  const received: Item[] = [];
  for await (const item of stream) received.push(item);
  return received;
};

describe('byte bound', () => {
  it('drops output beyond the bound, tells how many lines were skipped where they were, and keeps every state change in order', async () => {
    const { stream, controls } = bounded(3_000); // three 10-line batches
    const accepted = [
      controls.push(out('a')),
      controls.push(out('b')),
      controls.push(out('c')),
      controls.push(out('d')), // over: dropped
      controls.push(out('e', 7)), // over: dropped
    ];
    controls.pushPriority(state('running')); // lands although the bytes are spent
    expect(controls.push(out('f', 5))).toBe(false);
    controls.pushPriority(state('completed'));
    controls.end();

    expect(accepted).toEqual([true, true, true, false, false]);
    expect(stream.dropped).toBe(3);
    expect(await drain(stream)).toEqual([
      out('a'),
      out('b'),
      out('c'),
      { skipped: 17, job: 'j1' },
      state('running'),
      { skipped: 5, job: 'j1' },
      state('completed'),
    ]);
  });

  it('takes output again once the consumer drained room, and tells each run of drops once per job', async () => {
    const { stream, controls } = bounded(2_000);
    const gate = deferred();
    const consumer = consume(stream, (item) => ('out' in item && item.out === 'a' ? gate.promise : undefined));

    controls.push(out('a'));
    await flush(); // the consumer holds a, parked in send(); the queue is empty
    controls.push(out('b'));
    controls.push(out('c'));
    controls.push(out('d', 3, 'j2')); // dropped
    controls.push(out('e', 4, 'j1')); // dropped
    controls.push(out('f', 1, 'j2')); // dropped, same run as d
    gate.resolve();
    await flush();
    expect(controls.push(out('g'))).toBe(true);
    controls.end();
    await consumer.finished;

    expect(consumer.received).toEqual([out('a'), out('b'), out('c'), { skipped: 4, job: 'j2' }, { skipped: 4, job: 'j1' }, out('g')]);
  });

  it('counts what the transport still holds, so output for a consumer that does not drain is dropped rather than buffered', async () => {
    let held = 0;
    const { stream, controls } = bounded(3_000, () => held);
    expect(controls.push(out('a'))).toBe(true);
    held = 1_500; // the consumer's socket holds a frame it cannot send
    expect(controls.push(out('b', 5))).toBe(true); // 1000 queued + 1500 held + 500 = the bound
    expect(controls.push(out('c'))).toBe(false); // the queue alone (1500) has room, with the socket's share it has none
    held = 0; // the socket drained
    expect(controls.push(out('d'))).toBe(true);
    controls.end();
    expect(await drain(stream)).toEqual([out('a'), out('b', 5), { skipped: 10, job: 'j1' }, out('d')]);
  });

  it('lets one item bigger than the whole bound through an empty queue and a drained transport, and no further', async () => {
    let held = 0;
    const { stream, controls } = bounded(500, () => held);
    expect(controls.push(out('big', 20))).toBe(true); // 2000 bytes: could never be delivered otherwise
    expect(controls.push(out('next', 1))).toBe(false); // the queue is over the bound
    controls.end();
    expect(await drain(stream)).toEqual([out('big', 20), { skipped: 1, job: 'j1' }]);

    const blocked = bounded(500, () => (held = 1));
    expect(blocked.controls.push(out('big', 20))).toBe(false); // the transport is not drained: it would be held there
    blocked.controls.end();
    expect(await drain(blocked.stream)).toEqual([{ skipped: 20, job: 'j1' }]);
  });

  it('delivers the notice of output dropped after the last queued item before the stream ends', async () => {
    const { stream, controls } = bounded(1_000);
    controls.push(out('a'));
    controls.push(out('b', 3));
    controls.push(out('c', 4));
    controls.end();
    expect(await drain(stream)).toEqual([out('a'), { skipped: 7, job: 'j1' }]);
  });

  it('a count eviction to make room for a state change is told where the evicted output was', async () => {
    const { stream, controls } = bounded(1_000_000, undefined, { capacity: 3 });
    controls.pushPriority(state('queued'));
    controls.push(out('a', 2));
    controls.push(out('b', 3));
    controls.pushPriority(state('running')); // full in events: evicts a, the oldest output
    controls.end();
    expect(await drain(stream)).toEqual([state('queued'), { skipped: 2, job: 'j1' }, out('b', 3), state('running')]);
    expect(stream.dropped).toBe(1);
  });

  it('pushOrTerminate fails the stream once the queued bytes would pass the bound', async () => {
    const { stream, controls } = bounded(2_500);
    controls.pushOrTerminate(out('a'));
    controls.pushOrTerminate(out('b'));
    controls.pushOrTerminate(out('c')); // 3000 > 2500
    const err = await stream.next().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StreamBackpressureError);
    expect(err).toMatchObject({ code: 'unavailable', details: { maxBytes: 2_500 } });
    expect((err as Error).message).toMatch(/fell behind by more than 2500 bytes and must resync/);
  });

  it('without a drop notice, drops are only counted', async () => {
    const { stream, controls } = controlled<Item>({ bytes: { max: 1_000, sizeOf: bytesOf } });
    controls.push(out('a'));
    controls.push(out('b'));
    controls.end();
    expect(await drain(stream)).toEqual([out('a')]);
    expect(stream.dropped).toBe(1);
  });

  it('rejects a bound that is not a positive integer, naming it', () => {
    expect(() => bounded(0)).toThrow(/bytes\.max: must be a positive integer \(got 0\)/);
  });
});
