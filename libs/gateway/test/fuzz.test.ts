import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayCommands } from '../src/commands/index.js';
import type { CommandContext, CommandHandler, Session } from '../src/commands/types.js';
import { STOP_STREAM } from '../src/ws/connection.js';
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

/**
 * The argument names a handler's schema reads, found by running it on an args object that records
 * every key looked up (the schema checks each of its keys before it fails on the missing ones), so a
 * new command or argument is covered without touching this test.
 */
async function argumentNames(handler: CommandHandler): Promise<string[]> {
  const seen = new Set<string>();
  const record = (key: string | symbol) => {
    if (typeof key === 'string') seen.add(key);
  };
  const args = new Proxy<Record<string, unknown>>({}, {
    has: (target, key) => (record(key), key in target),
    get: (target, key) => (record(key), Reflect.get(target, key)),
    getOwnPropertyDescriptor: (target, key) => (record(key), Reflect.getOwnPropertyDescriptor(target, key)),
  });
  // A handler whose arguments are all optional goes on to its context, which refuses: the names were read by then.
  const ctx = new Proxy({} as CommandContext, { get: () => { throw new Error('probe reached the context'); } });
  const session: Session = { authenticated: true, token: undefined, closeAfterReply: false };
  await handler(ctx, args, session).catch(() => undefined);
  return [...seen];
}

const NESTINGS = [
  { shape: 'arrays', open: '[', inner: '', close: ']' },
  { shape: 'objects', open: '{"a":', inner: '0', close: '}' },
];
const DEPTHS = [64, 5_000, 100_000];
const nested = (n: (typeof NESTINGS)[number], depth: number): string => n.open.repeat(depth) + n.inner + n.close.repeat(depth);

describe('deeply nested frames', () => {
  const password = 'correct horse battery';
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ settings: { 'gateway.password': password } });
  });
  afterAll(() => stack.close());

  it('every argument of every command, nested up to 100,000 levels, is answered with an error frame before and after login, and the connection serves on', async () => {
    const commands = [...Object.keys(gatewayCommands), STOP_STREAM];
    const argsOf = new Map<string, string[]>();
    for (const command of commands) {
      const handler = gatewayCommands[command];
      // stop_stream is answered by the connection itself; its one argument is the stream's message_id.
      argsOf.set(command, [...(handler ? await argumentNames(handler) : ['message_id']), 'no_such_argument']);
    }
    expect(argsOf.get('auth/login')).toEqual(expect.arrayContaining(['username', 'password', 'token']));
    expect(argsOf.get('devices/update_config')).toEqual(expect.arrayContaining(['configuration', 'content']));
    expect(argsOf.get('components/get_components')).toContain('query');
    expect(argsOf.get('firmware/compile_bulk')).toContain('configurations');

    /** Every argument (and args itself) of every command, in each shape and depth: built one at a time, the largest are 600 KB. */
    function* deepFrames(): Generator<{ what: string; text: (id: number) => string }> {
      for (const n of NESTINGS) {
        for (const depth of DEPTHS) {
          const value = nested(n, depth);
          for (const command of commands) {
            const head = (id: number) => `{"command":${JSON.stringify(command)},"message_id":${id},"args":`;
            for (const arg of argsOf.get(command)!) yield { what: `${command} ${arg} ${n.shape}×${depth}`, text: (id) => `${head(id)}{${JSON.stringify(arg)}:${value}}}` };
            yield { what: `${command} args ${n.shape}×${depth}`, text: (id) => `${head(id)}${value}}` };
          }
        }
      }
    }

    const bystander = await Client.connect(stack.wsUrl);
    const client = await Client.connect(stack.wsUrl);
    await client.next((f) => f.event === 'server_info');
    let nextId = 1_000_000; // clear of the ids client.call() uses
    for (const phase of ['before login', 'after login']) {
      const wrong: string[] = [];
      let count = 0;
      const pending: { what: string; id: number }[] = [];
      const drain = async () => {
        for (const { what, id } of pending.splice(0)) {
          const answer = await client.next((f) => f.message_id === id, 60_000);
          const message = String((answer.details as { message?: unknown } | undefined)?.message);
          if (answer.error_code !== 'invalid_args' || !message.includes('32 levels')) wrong.push(`${phase}: ${what} → ${JSON.stringify(answer).slice(0, 200)}`);
        }
        client.frames.length = 0;
      };
      for (const frame of deepFrames()) {
        const id = nextId++;
        client.sendRaw(frame.text(id));
        pending.push({ what: frame.what, id });
        count++;
        if (pending.length === 16) await drain();
      }
      await drain();
      expect(wrong).toEqual([]);
      expect(count).toBeGreaterThan(commands.length * NESTINGS.length * DEPTHS.length * 2);
      // Served on: the login itself, then an ordinary command.
      if (phase === 'before login') expect((await client.call('auth/login', { password })).result).toMatchObject({ authenticated: true });
      else expect((await client.call('config/version')).result).toMatchObject({ kiln_version: expect.any(String) });
    }

    // Nested where no argument is: message_id, command, an extra key, the whole frame; the id is echoed when it can be read.
    const value = nested(NESTINGS[0]!, 100_000);
    const elsewhere = [
      { text: `{"command":"config/version","message_id":${value}}`, id: null },
      { text: `{"command":${value},"message_id":7}`, id: 7 },
      { text: `{"command":"config/version","message_id":8,"extra":${value}}`, id: 8 },
      { text: value, id: null },
    ];
    for (const { text, id } of elsewhere) {
      client.frames.length = 0;
      client.sendRaw(text);
      const answer = await client.next((f) => 'error_code' in f, 60_000);
      expect(answer).toMatchObject({ message_id: id, error_code: 'invalid_message', details: { message: expect.stringContaining('32 levels') } });
    }
    expect((await client.call('config/version')).result).toMatchObject({ kiln_version: expect.any(String) });
    expect((await bystander.call('auth/login', { password })).result).toMatchObject({ authenticated: true });
    expect(stack.gateway.server!.connectionCount()).toBe(2);
    client.close();
    bystander.close();
  }, 600_000);
});
