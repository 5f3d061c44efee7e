import { getEventListeners } from 'node:events';
import { KilnError } from '@kiln/core';
import { describe, expect, it, vi } from 'vitest';
import { DEFAULT_STREAM_CAPACITY, streamEvents, type StreamControls } from '../src/index.js';
import { consume, controlled, FakeSource, viaPush } from './support.js';

describe('setup and failures', () => {
  it('attach throwing propagates from streamEvents and leaves nothing attached', () => {
    const abort = new AbortController();
    const failure = new Error('subscribe failed');
    const snapshot = vi.fn(() => []);
    let controls: StreamControls<number> | undefined;

    expect(() =>
      streamEvents<number>({
        attach: (c) => {
          controls = c;
          throw failure;
        },
        snapshot,
        signal: abort.signal,
      }),
    ).toThrow(failure);

    expect(snapshot).not.toHaveBeenCalled();
    expect(getEventListeners(abort.signal, 'abort')).toHaveLength(0);
    // Controls that escaped the failed attach are inert.
    expect(controls?.push(1)).toBe(false);
    controls?.pushPriority(2);
    controls?.pushOrTerminate(3);
    controls?.end();
    expect(controls?.dropped).toBe(0);
  });

  it.each([
    ['a sync', (): Iterable<string> => (function* () {
      yield 'h1';
      throw new Error('history unreadable');
    })()],
    ['an async', (): AsyncIterable<string> => (async function* () {
      yield 'h1';
      throw new Error('history unreadable');
    })()],
  ])('%s snapshot throwing releases listeners and reaches the consumer', async (_kind, snapshot) => {
    const source = new FakeSource<string>();
    const stream = streamEvents<string>({ attach: source.attachWith(viaPush), snapshot });
    source.emit('l1');
    const consumer = consume(stream);

    await expect(consumer.finished).rejects.toThrow('history unreadable');
    expect(consumer.received).toEqual(['h1']);
    expect(source.listeners).toBe(0);
    expect(source.releases).toBe(1);
    expect(await stream.next()).toEqual({ done: true, value: undefined });
  });

  it('snapshot() itself throwing releases listeners and propagates from streamEvents', () => {
    const source = new FakeSource<string>();
    const failure = new Error('no history');
    expect(() =>
      streamEvents<string>({
        attach: source.attachWith(viaPush),
        snapshot: () => {
          throw failure;
        },
      }),
    ).toThrow(failure);
    expect(source.listeners).toBe(0);
    expect(source.releases).toBe(1);
  });

  it('snapshot is taken right after attach, in the same tick', () => {
    const calls: string[] = [];
    streamEvents<number>({
      attach: () => {
        calls.push('attach');
        return { [Symbol.dispose]: () => {} };
      },
      snapshot: () => {
        calls.push('snapshot');
        return [];
      },
    });
    expect(calls).toEqual(['attach', 'snapshot']);
  });
});

describe('capacity', () => {
  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '10' as unknown as number])(
    'capacity %s is rejected as invalid_args before anything attaches',
    (capacity) => {
      const attach = vi.fn(() => ({ [Symbol.dispose]: () => {} }));
      let thrown: unknown;
      try {
        streamEvents<number>({ attach, capacity });
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(KilnError);
      expect(thrown).toMatchObject({ code: 'invalid_args', details: { field: 'capacity', value: capacity } });
      expect(attach).not.toHaveBeenCalled();
    },
  );

  it('capacity defaults to DEFAULT_STREAM_CAPACITY live items, not counting history', async () => {
    expect(DEFAULT_STREAM_CAPACITY).toBe(4000);
    const history = Array.from({ length: 10 }, (_, i) => -i);
    const { stream, controls } = controlled<number>({ snapshot: () => history });
    const accepted = Array.from({ length: DEFAULT_STREAM_CAPACITY + 1 }, (_, i) => controls.push(i));
    expect(accepted.filter(Boolean)).toHaveLength(DEFAULT_STREAM_CAPACITY);
    expect(accepted.at(-1)).toBe(false);
    expect(stream.dropped).toBe(1);

    controls.end();
    const consumer = consume(stream);
    await consumer.finished;
    expect(consumer.received).toEqual([...history, ...Array.from({ length: DEFAULT_STREAM_CAPACITY }, (_, i) => i)]);
  });

  it('capacity 1 is the smallest accepted bound', async () => {
    const { stream, controls } = controlled<number>({ capacity: 1 });
    expect([controls.push(1), controls.push(2)]).toEqual([true, false]);
    stream[Symbol.dispose]();
  });
});
