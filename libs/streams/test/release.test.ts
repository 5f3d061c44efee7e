import { describe, expect, it } from 'vitest';
import { StreamBackpressureError } from '../src/index.js';
import { consume, controlled } from './support.js';

describe('after release', () => {
  it('pushes after dispose are ignored and nothing is queued or counted', async () => {
    const { stream, controls, releases } = controlled<number>({ capacity: 2 });
    stream[Symbol.dispose]();

    expect([1, 2, 3].map((n) => controls.push(n))).toEqual([false, false, false]);
    for (const n of [4, 5, 6]) controls.pushPriority(n);
    for (const n of [7, 8, 9]) controls.pushOrTerminate(n); // would terminate if anything were queued
    controls.end();

    expect(stream.dropped).toBe(0);
    expect(await stream.next()).toEqual({ done: true, value: undefined });
    expect(releases()).toBe(1);
  });

  it('pushes after end are ignored while the backlog drains', async () => {
    const { stream, controls, releases } = controlled<number>({ capacity: 3 });
    controls.push(1);
    controls.end();
    expect(controls.push(2)).toBe(false);
    controls.pushPriority(3);
    controls.pushOrTerminate(4);
    controls.end();

    const consumer = consume(stream);
    await consumer.finished;
    expect(consumer.received).toEqual([1]);
    expect(stream.dropped).toBe(0);
    expect(releases()).toBe(1);
  });

  it('pushes after terminate are ignored and the failure is reported once', async () => {
    const { stream, controls, releases } = controlled<number>({ capacity: 1 });
    controls.pushOrTerminate(1);
    controls.pushOrTerminate(2); // terminates
    expect(controls.push(3)).toBe(false);
    controls.pushPriority(4);
    controls.end(); // must not turn the failure into a clean finish

    await expect(stream.next()).rejects.toBeInstanceOf(StreamBackpressureError);
    expect(await stream.next()).toEqual({ done: true, value: undefined });
    expect(releases()).toBe(1);
  });
});
