import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, startStack, type Stack } from './harness.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Deterministic PRNG (mulberry32) so a failing case can be replayed. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A frame no command accepts: broken JSON, wrong types, huge or hostile strings, unknown commands, bad args. */
function malformed(rand: () => number, i: number): string {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const junk = (n: number) => Array.from({ length: n }, () => String.fromCharCode(Math.floor(rand() * 0xffff))).join('');
  const big = 'x'.repeat(Math.floor(rand() * 200_000));
  const kinds = [
    () => junk(Math.floor(rand() * 64)),
    () => `{"command":"firmware/compile","message_id":${i},"args":{"configuration":`,
    () => JSON.stringify(pick([null, 1, 'str', [], [1, 2], true])),
    () => JSON.stringify({ command: pick([null, 7, [], {}, '', big]), message_id: i }),
    () => JSON.stringify({ command: 'firmware/compile', message_id: pick([null, 1.5, {}, [], '', big]) }),
    () => JSON.stringify({ command: `no/such/${junk(8)}`, message_id: i, args: {} }),
    () => JSON.stringify({ command: 'firmware/compile', message_id: i, args: pick([[], 'args', 5]) }),
    () => JSON.stringify({ command: 'firmware/compile', message_id: i, args: { configuration: pick([big, '../x.yaml', 'a\u0000.yaml', 5, null, {}, 'nope.yaml']) } }),
    () => JSON.stringify({ command: 'firmware/cancel', message_id: i, args: { job_id: pick([big, '', 42, '../../etc', 'missing-job']) } }),
    () => JSON.stringify({ command: 'firmware/install_bulk', message_id: i, args: { configurations: pick([[], [5], 'x', Array.from({ length: 600 }, () => 'a.yaml')]) } }),
    () => JSON.stringify({ command: 'devices/update_config', message_id: i, args: { configuration: 'kitchen.yaml', content: pick([5, null, 'esphome: [', big]) } }),
    () => JSON.stringify({ command: 'stop_stream', message_id: i, args: { message_id: pick([null, 'nope', 99999]) } }),
  ];
  return pick(kinds)();
}

describe('fuzz', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(() => stack.close());

  it('answers 5000 malformed frames each with an error frame, stays up, and does not grow', async () => {
    const client = await Client.connect(stack.wsUrl);
    await client.next((f) => f.event === 'server_info');
    const rand = prng(20261122);
    const send = async (from: number, count: number) => {
      const before = client.frames.length;
      for (let i = from; i < from + count; i++) client.sendRaw(malformed(rand, i));
      // stop_stream of an unknown id is the one malformed frame answered with a result ({stopped: false}).
      for (let k = 0; k < 2000 && client.frames.length < before + count; k++) await new Promise((r) => setTimeout(r, 5));
      return client.frames.slice(before);
    };
    await send(0, 500); // warm-up: JIT and buffers are not growth
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const answers = await send(500, 5000);
    expect(answers).toHaveLength(5000);
    const unexpected = answers.filter((f) => !('error_code' in f) && !(f.result && (f.result as { stopped?: boolean }).stopped === false));
    expect(unexpected).toEqual([]);
    const codes = new Set(answers.map((f) => f.error_code).filter(Boolean));
    expect([...codes].sort()).toEqual(expect.arrayContaining(['invalid_args', 'invalid_message', 'not_found', 'unknown_command']));
    client.frames.length = 0;
    gc();
    const growthMb = (process.memoryUsage().heapUsed - heapBefore) / 1024 / 1024;
    expect(growthMb).toBeLessThan(10);
    // Still serving, with nothing queued by the garbage.
    expect((await client.call('firmware/get_jobs')).result).toEqual([]);
    expect(stack.gateway.server!.connectionCount()).toBe(1);
    client.close();
  });

  it('a frame over the size limit closes that socket only', async () => {
    const victim = await Client.connect(stack.wsUrl);
    const bystander = await Client.connect(stack.wsUrl);
    victim.sendRaw('x'.repeat(2 * 1024 * 1024));
    expect((await victim.closed).code).toBe(1009);
    expect((await bystander.call('config/version')).result).toMatchObject({ kiln_version: expect.any(String) });
    bystander.close();
  });
});
