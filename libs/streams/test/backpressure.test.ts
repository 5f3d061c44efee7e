import { deferred, KilnError } from '@kiln/core';
import { describe, expect, it } from 'vitest';
import { StreamBackpressureError, streamEvents } from '../src/index.js';
import { consume, controlled, FakeSource, flush } from './support.js';

describe('backpressure', () => {
  it('push drops the newest item once the queue is full and counts each drop', async () => {
    const { stream, controls } = controlled<number>({ capacity: 3 });
    const gate = deferred();
    const consumer = consume(stream, (n) => (n === 1 ? gate.promise : undefined));

    controls.push(1);
    await flush(); // the consumer holds 1 and is parked in send(), the queue is empty
    const accepted = [2, 3, 4, 5, 6].map((n) => controls.push(n));

    expect(accepted).toEqual([true, true, true, false, false]);
    expect(stream.dropped).toBe(2);
    expect(controls.dropped).toBe(2);

    gate.resolve();
    await flush();
    expect(consumer.received).toEqual([1, 2, 3, 4]);

    // Draining made room again; earlier drops stay counted.
    expect(controls.push(7)).toBe(true);
    controls.end();
    await consumer.finished;
    expect(consumer.received).toEqual([1, 2, 3, 4, 7]);
    expect(stream.dropped).toBe(2);
  });

  it('pushPriority evicts the oldest ordinary item and always lands', async () => {
    const { stream, controls } = controlled<number>({ capacity: 3 });
    controls.pushPriority(101);
    controls.push(1);
    controls.push(2); // full: [P101, 1, 2]
    controls.pushPriority(102); // evicts 1, the oldest ordinary item, not the older P101
    expect(controls.push(3)).toBe(false); // a plain push still drops itself
    controls.end();

    const consumer = consume(stream);
    await consumer.finished;
    expect(consumer.received).toEqual([101, 2, 102]);
    expect(stream.dropped).toBe(2);
  });

  it('pushPriority on a queue full of priority items evicts the oldest one', async () => {
    const { stream, controls } = controlled<number>({ capacity: 2 });
    for (const n of [101, 102, 103, 104]) controls.pushPriority(n);
    controls.end();

    const consumer = consume(stream);
    await consumer.finished;
    expect(consumer.received).toEqual([103, 104]);
    expect(stream.dropped).toBe(2);
  });

  it('pushPriority keeps arrival order across ordinary and priority items', async () => {
    const { stream, controls } = controlled<number>({ capacity: 3 });
    controls.push(1);
    controls.pushPriority(101);
    controls.push(2);
    controls.pushPriority(102); // evicts 1
    controls.end();

    const consumer = consume(stream);
    await consumer.finished;
    expect(consumer.received).toEqual([101, 2, 102]);
    expect(stream.dropped).toBe(1);
  });

  it('pushOrTerminate on overflow releases listeners at once and the next read throws StreamBackpressureError', async () => {
    const source = new FakeSource<number>();
    const stream = streamEvents<number>({ capacity: 2, attach: source.attachWith((c, n) => c.pushOrTerminate(n)) });
    const gate = deferred();
    const consumer = consume(stream, (n) => (n === 1 ? gate.promise : undefined));
    const outcome = consumer.finished.then(
      () => undefined,
      (err: unknown) => err,
    );

    source.emit(1);
    await flush(); // the consumer holds 1, parked in send()
    source.emit(2, 3); // fills the queue: below capacity it behaves like push
    expect(source.listeners).toBe(1);
    expect(stream.released).toBe(false);

    source.emit(4); // overflow
    expect(source.listeners).toBe(0); // synchronously, before the consumer reads again
    expect(source.releases).toBe(1);
    expect(stream.released).toBe(true);

    gate.resolve();
    const err = await outcome;
    expect(err).toBeInstanceOf(StreamBackpressureError);
    expect(err).toBeInstanceOf(KilnError);
    expect(err).toMatchObject({ code: 'unavailable', details: { capacity: 2 } });
    expect((err as Error).message).toMatch(/fell behind by more than 2 events and must resync/);
    expect(consumer.received).toEqual([1]); // the backlog (2, 3) was discarded, not delivered

    expect(await stream.next()).toEqual({ done: true, value: undefined });
    expect(source.releases).toBe(1);
  });

  it('pushOrTerminate during the snapshot fails the next read instead of delivering more history', async () => {
    const { stream, controls } = controlled<string>({ capacity: 1, snapshot: () => ['h1', 'h2', 'h3'] });

    expect(await stream.next()).toEqual({ done: false, value: 'h1' });
    controls.pushOrTerminate('l1');
    controls.pushOrTerminate('l2'); // overflow while history is still being sent
    await expect(stream.next()).rejects.toBeInstanceOf(StreamBackpressureError);
    expect(await stream.next()).toEqual({ done: true, value: undefined });
  });

  it('fail releases listeners at once, discards the backlog and rethrows the source error on the next read', async () => {
    const source = new FakeSource<number>();
    const stream = streamEvents<number>({ attach: source.attachWith((c, n) => (n < 0 ? c.fail(new Error(`source broke at ${n}`)) : c.push(n))) });
    source.emit(1, 2);
    expect(await stream.next()).toEqual({ done: false, value: 1 });
    source.emit(-1);
    expect(source.listeners).toBe(0);
    expect(source.releases).toBe(1);
    await expect(stream.next()).rejects.toThrow('source broke at -1');
    expect(await stream.next()).toEqual({ done: true, value: undefined });
    source.emit(3);
    expect(source.releases).toBe(1);
  });
});
