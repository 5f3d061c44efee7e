import { getEventListeners } from 'node:events';
import { deferred } from '@kiln/core';
import { describe, expect, it, vi } from 'vitest';
import { streamEvents } from '../src/index.js';
import { consume, FakeSource, flush, viaPush } from './support.js';

const DONE = { done: true, value: undefined };

/** A stream over a live source that has already delivered 'h1' from history. */
function following(signal?: AbortSignal): { source: FakeSource<string>; stream: ReturnType<typeof streamEvents<string>> } {
  const source = new FakeSource<string>();
  const stream = streamEvents<string>({ attach: source.attachWith(viaPush), snapshot: () => ['h1'], ...(signal ? { signal } : {}) });
  return { source, stream };
}

describe('cancellation releases every listener exactly once', () => {
  it('breaking out of the loop releases listeners exactly once', async () => {
    const { source, stream } = following();
    expect(source.listeners).toBe(1);
    for await (const item of stream) {
      expect(item).toBe('h1');
      break;
    }
    expect(source.listeners).toBe(0);
    expect(source.releases).toBe(1);

    // Every other way out afterwards is a no-op.
    await stream.return?.();
    stream[Symbol.dispose]();
    expect(await stream.next()).toEqual(DONE);
    expect(source.releases).toBe(1);
  });

  it('an exception in the consumer releases listeners exactly once', async () => {
    const { source, stream } = following();
    source.emit('l1');
    const consumer = consume(stream, (item) => {
      if (item === 'l1') throw new Error('send failed');
    });
    await expect(consumer.finished).rejects.toThrow('send failed');
    expect(consumer.received).toEqual(['h1', 'l1']);
    expect(source.listeners).toBe(0);
    expect(source.releases).toBe(1);
  });

  it('dispose releases listeners exactly once and finishes a parked read', async () => {
    const { source, stream } = following();
    const consumer = consume(stream);
    await flush(); // delivered h1, parked waiting for live
    expect(consumer.received).toEqual(['h1']);

    stream[Symbol.dispose]();
    expect(source.listeners).toBe(0);
    await consumer.finished; // the parked read resolved as done
    stream[Symbol.dispose]();
    expect(source.releases).toBe(1);
    expect(stream.released).toBe(true);
  });

  it('abort finishes a parked read and releases listeners exactly once', async () => {
    const abort = new AbortController();
    const { source, stream } = following(abort.signal);
    const consumer = consume(stream);
    await flush();
    expect(getEventListeners(abort.signal, 'abort')).toHaveLength(1);

    abort.abort();
    expect(source.listeners).toBe(0);
    await consumer.finished;
    expect(consumer.received).toEqual(['h1']);
    stream[Symbol.dispose]();
    expect(source.releases).toBe(1);
  });

  it('finishing removes the abort listener so a long-lived signal does not accumulate them', async () => {
    const abort = new AbortController();
    for (let i = 0; i < 3; i++) {
      const { stream } = following(abort.signal);
      stream[Symbol.dispose]();
    }
    expect(getEventListeners(abort.signal, 'abort')).toHaveLength(0);
  });

  it('abort while an async snapshot is stalled finishes iteration', async () => {
    const abort = new AbortController();
    const source = new FakeSource<string>();
    const never = deferred();
    const stream = streamEvents<string>({
      attach: source.attachWith(viaPush),
      signal: abort.signal,
      snapshot: async function* () {
        yield 'h1';
        await never.promise;
        yield 'h2';
      },
    });
    const consumer = consume(stream);
    await flush(); // parked inside the snapshot, which will never continue

    abort.abort();
    await consumer.finished;
    expect(consumer.received).toEqual(['h1']);
    expect(source.releases).toBe(1);
  });

  it('cancelling mid-snapshot runs the snapshot generator finally block', async () => {
    const closed = vi.fn();
    const source = new FakeSource<string>();
    const stream = streamEvents<string>({
      attach: source.attachWith(viaPush),
      *snapshot() {
        try {
          yield 'h1';
          yield 'h2';
        } finally {
          closed();
        }
      },
    });
    for await (const item of stream) {
      expect(item).toBe('h1');
      break;
    }
    expect(closed).toHaveBeenCalledOnce();
    expect(source.releases).toBe(1);
  });

  it('an already aborted signal attaches nothing and finishes at once', async () => {
    const attach = vi.fn(new FakeSource<string>().attachWith(viaPush));
    const snapshot = vi.fn(() => ['h1']);
    const stream = streamEvents<string>({ attach, snapshot, signal: AbortSignal.abort() });
    expect(attach).not.toHaveBeenCalled();
    expect(snapshot).not.toHaveBeenCalled();
    expect(await stream.next()).toEqual(DONE);
  });
});
