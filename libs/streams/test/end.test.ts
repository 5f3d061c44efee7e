import { deferred } from '@kiln/core';
import { describe, expect, it } from 'vitest';
import { streamEvents, type StreamControls } from '../src/index.js';
import { consume, controlled, FakeSource, flush, viaPush } from './support.js';

describe('end', () => {
  it('end delivers the whole backlog, even from a full queue, then finishes', async () => {
    const source = new FakeSource<number>();
    let controls: StreamControls<number> | undefined;
    const attach = source.attachWith(viaPush<number>);
    const stream = streamEvents<number>({
      capacity: 3,
      attach: (c) => {
        controls = c;
        return attach(c);
      },
    });
    const gate = deferred();
    const consumer = consume(stream, (n) => (n === 1 ? gate.promise : undefined));

    source.emit(1);
    await flush(); // parked in send(1)
    source.emit(2, 3, 4); // the queue is now full
    controls?.end();

    // Nothing more can be accepted, so the listeners go now, not when the backlog is drained.
    expect(source.listeners).toBe(0);
    expect(source.releases).toBe(1);
    expect(stream.released).toBe(true);
    expect(controls?.push(5)).toBe(false);

    gate.resolve();
    await consumer.finished;
    expect(consumer.received).toEqual([1, 2, 3, 4]);
    expect(stream.dropped).toBe(0); // end() evicted nothing
    expect(source.releases).toBe(1);
  });

  it('end during an async snapshot still delivers all history, then the live backlog', async () => {
    const gate = deferred();
    const { stream, controls, releases } = controlled<string>({
      snapshot: async function* () {
        yield 'h1';
        await gate.promise;
        yield 'h2';
      },
    });
    const consumer = consume(stream);
    await flush(); // parked inside the snapshot

    controls.push('l1');
    controls.end();
    expect(releases()).toBe(1);
    gate.resolve();

    await consumer.finished;
    expect(consumer.received).toEqual(['h1', 'h2', 'l1']);
    expect(releases()).toBe(1);
  });

  it('end called inside attach (an already finished job) releases the handle as soon as attach returns', async () => {
    const source = new FakeSource<string>();
    const attach = source.attachWith(viaPush<string>);
    const stream = streamEvents<string>({
      attach: (c) => {
        const handle = attach(c);
        c.pushPriority('result');
        c.end();
        return handle;
      },
      snapshot: () => ['h1'],
    });
    expect(source.listeners).toBe(0);
    expect(source.releases).toBe(1);

    const consumer = consume(stream);
    await consumer.finished;
    expect(consumer.received).toEqual(['h1', 'result']);
    expect(source.releases).toBe(1);
  });
});
