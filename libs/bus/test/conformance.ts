import { randomBytes } from 'node:crypto';
import { KilnError } from '@kiln/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { listening, type Bus, type BusMessage, type BusOptions } from '../src/index.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (text: string): Uint8Array => encoder.encode(text);
const text = (data: Uint8Array): string => decoder.decode(data);

/** A fresh subject root per test, so parallel runs against one NATS server never see each other. */
const uniquePrefix = (): string => `kt${randomBytes(6).toString('hex')}`;

function thrown(fn: () => unknown): KilnError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(KilnError);
    return err as KilnError;
  }
  throw new Error('expected a KilnError to be thrown');
}

async function rejection(promise: Promise<unknown>): Promise<KilnError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(KilnError);
    return err as KilnError;
  }
  throw new Error('expected a KilnError rejection');
}

/** Fails instead of hanging when something that should end (an iterator loop) does not. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms}ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

function consume(iterable: AsyncIterable<BusMessage>, into: string[]): Promise<void> {
  return (async () => {
    for await (const msg of iterable) into.push(text(msg.data));
  })();
}

/** One suite, run against every Bus implementation: the buses must be interchangeable. */
export function busConformance(name: string, makeBus: (options?: BusOptions) => Promise<Bus>): void {
  describe(`${name} bus conformance`, () => {
    let bus: Bus;
    let p: string;

    beforeEach(async () => {
      bus = await makeBus();
      p = uniquePrefix();
    });

    afterEach(async () => {
      await bus.close();
    });

    /** Handler recording `subject=payload` for each delivery. */
    function record(pattern: string, options?: { queue?: string }): string[] {
      const got: string[] = [];
      bus.subscribe(pattern, (msg) => void got.push(`${msg.subject}=${text(msg.data)}`), options);
      return got;
    }

    describe('publish/subscribe', () => {
      it('delivers to an exact subscription, asynchronously, with subject and payload', async () => {
        const got: BusMessage[] = [];
        const sub = bus.subscribe(`${p}.a.b`, (msg) => void got.push(msg));
        expect(sub.subject).toBe(`${p}.a.b`);
        expect(sub.closed).toBe(false);

        bus.publish(`${p}.a.b`, bytes('hello'));
        bus.publish(`${p}.a.b`);
        bus.publish(`${p}.a.c`, bytes('other subject'));
        expect(got).toEqual([]); // the publisher never runs subscriber code

        await bus.flush();
        expect(got).toHaveLength(2);
        expect(got[0]!.subject).toBe(`${p}.a.b`);
        expect(got[0]!.data).toBeInstanceOf(Uint8Array);
        expect(text(got[0]!.data)).toBe('hello');
        expect(got[1]!.data).toHaveLength(0);
      });

      it("'*' matches exactly one token", async () => {
        const tail = record(`${p}.a.*`);
        const middle = record(`${p}.*.z`);
        for (const subject of [`${p}.a.b`, `${p}.a.b.c`, `${p}.a`, `${p}.x.b`, `${p}.a.c`, `${p}.q.z`, `${p}.q.r.z`, `${p}.a.z`]) {
          bus.publish(subject, bytes('x'));
        }
        await bus.flush();
        expect(tail).toEqual([`${p}.a.b=x`, `${p}.a.c=x`, `${p}.a.z=x`]);
        expect(middle).toEqual([`${p}.q.z=x`, `${p}.a.z=x`]);
      });

      it("'>' matches one or more trailing tokens", async () => {
        const got = record(`${p}.a.>`);
        for (const subject of [`${p}.a.b`, `${p}.a`, `${p}.a.b.c.d`, `${p}.b.c`, `${p}x.a.b`]) bus.publish(subject, bytes('x'));
        await bus.flush();
        expect(got).toEqual([`${p}.a.b=x`, `${p}.a.b.c.d=x`]);
      });

      it('wildcard subscriptions take effect for subjects already in use, and stop when removed', async () => {
        bus.subscribe(`${p}.elsewhere.>`, () => undefined); // some other wildcard interest exists throughout
        bus.publish(`${p}.a.b`, bytes('before'));
        const got: string[] = [];
        const first = bus.subscribe(`${p}.a.*`, (msg) => void got.push(`first:${text(msg.data)}`));
        bus.publish(`${p}.a.b`, bytes('1'));
        await bus.flush();
        first.unsubscribe();
        const second = bus.subscribe(`${p}.>`, (msg) => void got.push(`second:${text(msg.data)}`));
        bus.publish(`${p}.a.b`, bytes('2'));
        await bus.flush();
        second.unsubscribe();
        bus.publish(`${p}.a.b`, bytes('3'));
        await bus.flush();
        expect(got).toEqual(['first:1', 'second:2']);
      });

      it('queue groups: each message goes to exactly one member of each group', async () => {
        const workers = [record(`${p}.work`, { queue: 'workers' }), record(`${p}.work`, { queue: 'workers' })];
        // Groups are formed by name, so a member subscribed through a wildcard belongs to the same group.
        workers.push(record(`${p}.*`, { queue: 'workers' }));
        const auditors = record(`${p}.work`, { queue: 'auditors' });
        const plain = record(`${p}.work`);

        const sent = Array.from({ length: 60 }, (_, i) => `${p}.work=m${i}`);
        for (let i = 0; i < sent.length; i++) bus.publish(`${p}.work`, bytes(`m${i}`));
        await bus.flush();

        expect(workers.flat().sort()).toEqual([...sent].sort());
        expect(workers.filter((got) => got.length > 0).length).toBeGreaterThan(1); // load is spread, not pinned
        expect(auditors).toEqual(sent);
        expect(plain).toEqual(sent);
      });

      it('unsubscribe (and dispose) stops delivery', async () => {
        const got: string[] = [];
        const sub = bus.subscribe(`${p}.u`, (msg) => void got.push(`a:${text(msg.data)}`));
        const disposed = bus.subscribe(`${p}.u`, (msg) => void got.push(`b:${text(msg.data)}`));
        bus.publish(`${p}.u`, bytes('1'));
        await bus.flush();

        sub.unsubscribe();
        sub.unsubscribe(); // idempotent
        disposed[Symbol.dispose]();
        expect(sub.closed).toBe(true);
        expect(disposed.closed).toBe(true);
        bus.publish(`${p}.u`, bytes('2'));
        await bus.flush();
        expect(got.sort()).toEqual(['a:1', 'b:1']);
      });

      it('preserves publish order for 1000 messages', async () => {
        const exact: number[] = [];
        const wildcard: number[] = [];
        const iterated: string[] = [];
        bus.subscribe(`${p}.seq`, (msg) => void exact.push(Number(text(msg.data))));
        bus.subscribe(`${p}.>`, (msg) => void wildcard.push(Number(text(msg.data))));
        const sub = bus.subscribe(`${p}.seq`);
        const loop = consume(sub, iterated);

        for (let i = 0; i < 1000; i++) bus.publish(`${p}.seq`, bytes(String(i)));
        const expected = Array.from({ length: 1000 }, (_, i) => i);
        await vi.waitFor(() => expect(iterated).toHaveLength(1000), { timeout: 10_000 });
        expect(exact).toEqual(expected);
        expect(wildcard).toEqual(expected);
        expect(iterated).toEqual(expected.map(String));
        sub.unsubscribe();
        await within(loop, 2000, 'iterator loop');
      });
    });

    describe('async iteration', () => {
      it('yields messages in order and ends when unsubscribed', async () => {
        const sub = bus.subscribe(`${p}.it`);
        const got: string[] = [];
        const loop = consume(sub, got);
        for (const payload of ['1', '2', '3']) bus.publish(`${p}.it`, bytes(payload));
        await vi.waitFor(() => expect(got).toEqual(['1', '2', '3']));

        sub.unsubscribe();
        await within(loop, 2000, 'iterator loop after unsubscribe');
        bus.publish(`${p}.it`, bytes('4'));
        await bus.flush();
        expect(got).toEqual(['1', '2', '3']);
        expect(bus.subscriptionCount()).toBe(0);
      });

      it('breaking out of the loop unsubscribes', async () => {
        const sub = bus.subscribe(`${p}.brk`);
        bus.publish(`${p}.brk`, bytes('first'));
        bus.publish(`${p}.brk`, bytes('second'));
        const got: string[] = [];
        for await (const msg of sub) {
          got.push(text(msg.data));
          break;
        }
        expect(got).toEqual(['first']);
        expect(sub.closed).toBe(true);
        expect(bus.subscriptionCount()).toBe(0);
      });

      it('a subscription with a handler cannot be iterated', () => {
        const sub = bus.subscribe(`${p}.h`, () => undefined);
        expect(thrown(() => sub[Symbol.asyncIterator]()).code).toBe('failed_precondition');
      });
    });

    describe('request/reply', () => {
      it('round-trips through a responder (async and sync, exact and wildcard)', async () => {
        bus.respond(`${p}.echo`, async (msg) => bytes(`echo:${text(msg.data)}@${msg.subject}`));
        bus.respond(`${p}.sync.*`, (msg) => bytes(msg.subject));

        const reply = await bus.request(`${p}.echo`, bytes('hi'));
        expect(reply.subject).toBe(`${p}.echo`);
        expect(reply.data).toBeInstanceOf(Uint8Array);
        expect(text(reply.data)).toBe(`echo:hi@${p}.echo`);
        expect(text((await bus.request(`${p}.sync.x`)).data)).toBe(`${p}.sync.x`);
      });

      it('a responder queue group answers each request once', async () => {
        const calls: string[] = [];
        for (const id of ['r1', 'r2']) {
          bus.respond(`${p}.svc`, (msg) => (calls.push(id), bytes(`${id}:${text(msg.data)}`)), { queue: 'svc' });
        }
        const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => bus.request(`${p}.svc`, bytes(String(i)))));
        expect(replies.map((r) => text(r.data).split(':')[1])).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
        expect(calls).toHaveLength(20);
      });

      it("rejects with 'timeout' when nobody answers in time", async () => {
        bus.subscribe(`${p}.silent`, () => undefined); // hears the request, never replies
        const started = Date.now();
        const err = await rejection(bus.request(`${p}.silent`, undefined, { timeoutMs: 150 }));
        expect(err.code).toBe('timeout');
        expect(err.details).toEqual({ subject: `${p}.silent`, timeoutMs: 150 });
        expect(Date.now() - started).toBeGreaterThanOrEqual(140);
      });

      it('defaults to a 5000 ms timeout', async () => {
        bus.subscribe(`${p}.silent`, () => undefined);
        const started = Date.now();
        const err = await rejection(bus.request(`${p}.silent`));
        expect(err.code).toBe('timeout');
        expect(err.details).toEqual({ subject: `${p}.silent`, timeoutMs: 5000 });
        expect(Date.now() - started).toBeGreaterThanOrEqual(4900);
      }, 15_000);

      it("rejects with 'unavailable' at once when nobody serves the subject", async () => {
        const started = Date.now();
        const err = await rejection(bus.request(`${p}.nobody`, undefined, { timeoutMs: 4000 }));
        expect(err.code).toBe('unavailable');
        expect(err.message).toBe(`no responders for ${p}.nobody`);
        expect(err.details).toEqual({ subject: `${p}.nobody` });
        expect(Date.now() - started).toBeLessThan(1000);
      });

      it.each(['gone', '*'])('a responder on %j that unsubscribed no longer counts as one', async (token) => {
        bus.subscribe(`${p}.elsewhere.>`, () => undefined); // some other wildcard interest exists throughout
        const responder = bus.respond(`${p}.${token}`, () => bytes('here'));
        expect(text((await bus.request(`${p}.gone`)).data)).toBe('here');
        responder.unsubscribe();
        await bus.flush();
        const started = Date.now();
        const err = await rejection(bus.request(`${p}.gone`, undefined, { timeoutMs: 4000 }));
        expect(err.code).toBe('unavailable');
        expect(Date.now() - started).toBeLessThan(1000);
      });

      it("a responder's KilnError reaches the requester with the same code, message and details", async () => {
        bus.respond(`${p}.job`, () => {
          throw new KilnError('not_found', 'job not found: "x"', { job: 'x' });
        });
        bus.respond(`${p}.later`, async () => {
          throw new KilnError('failed_precondition', 'not yet', { retry: true, at: new Date(0) });
        });

        const err = await rejection(bus.request(`${p}.job`));
        expect({ code: err.code, message: err.message, details: err.details }).toEqual({
          code: 'not_found',
          message: 'job not found: "x"',
          details: { job: 'x' },
        });
        // Details travel as JSON on both buses, so both requesters see the same values.
        const later = await rejection(bus.request(`${p}.later`));
        expect(later.toJSON()).toEqual({
          code: 'failed_precondition',
          message: 'not yet',
          details: { retry: true, at: '1970-01-01T00:00:00.000Z' },
        });
      });

      it("other responder failures become 'internal_error'", async () => {
        bus.respond(`${p}.boom`, () => {
          throw new Error('boom');
        });
        bus.respond(`${p}.nothing`, () => 'not bytes' as unknown as Uint8Array);
        const err = await rejection(bus.request(`${p}.boom`));
        expect(err.toJSON()).toEqual({ code: 'internal_error', message: 'boom', details: {} });
        expect((await rejection(bus.request(`${p}.nothing`))).code).toBe('internal_error');
      });
    });

    describe('argument validation', () => {
      const malformed = ['', ' ', 'a b', 'a\tb', 'a\nb', 'a\u00a0b', 'a\u0000b', '.a', 'a.', 'a..b', 'a*', '*a', 'a.b>', 'a.>.b', '>.a', 'a.**', 'a.>>'];
      const wildcards = ['*', '>', 'a.*', 'a.>', 'a.*.b', '*.*.>'];

      it.each([...malformed, ...wildcards])('publish rejects subject %j', (subject) => {
        const err = thrown(() => bus.publish(subject));
        expect(err.code).toBe('invalid_args');
        expect(err.details).toEqual({ field: 'subject', value: subject });
        expect(err.message).toContain(JSON.stringify(subject));
      });

      it.each(malformed)('subscribe and respond reject subject %j', (subject) => {
        for (const attempt of [() => bus.subscribe(subject), () => bus.respond(subject, () => bytes(''))]) {
          const err = thrown(attempt);
          expect(err.code).toBe('invalid_args');
          expect(err.details).toEqual({ field: 'subject', value: subject });
          expect(err.message).toContain(JSON.stringify(subject));
        }
        expect(bus.subscriptionCount()).toBe(0);
      });

      it.each(wildcards)('subscribe accepts wildcard pattern %j and request rejects it', async (pattern) => {
        const sub = bus.subscribe(`${p}.${pattern}`, () => undefined);
        expect(bus.subscriptionCount()).toBe(1);
        sub.unsubscribe();
        const err = await rejection(bus.request(`${p}.${pattern}`));
        expect(err.code).toBe('invalid_args');
        expect(err.details).toEqual({ field: 'subject', value: `${p}.${pattern}` });
      });

      it('rejects bad queue names, payloads and timeouts', async () => {
        expect(thrown(() => bus.subscribe(`${p}.q`, undefined, { queue: 'two words' })).code).toBe('invalid_args');
        expect(thrown(() => bus.subscribe(`${p}.q`, undefined, { queue: '' })).code).toBe('invalid_args');
        expect(thrown(() => bus.publish(`${p}.q`, 'text' as unknown as Uint8Array)).code).toBe('invalid_args');
        bus.respond(`${p}.q`, () => bytes(''));
        expect((await rejection(bus.request(`${p}.q`, undefined, { timeoutMs: 0 }))).code).toBe('invalid_args');
        expect(bus.subscriptionCount()).toBe(1);
      });
    });

    describe('lifecycle', () => {
      it('subscriptionCount returns to zero after disposal', () => {
        expect(bus.subscriptionCount()).toBe(0);
        const handled = bus.subscribe(`${p}.a`, () => undefined);
        const iterated = bus.subscribe(`${p}.b`);
        const responding = bus.respond(`${p}.c`, () => bytes(''));
        const several = listening(bus, [`${p}.d`, `${p}.e.*`], () => undefined);
        expect(bus.subscriptionCount()).toBe(5);

        handled.unsubscribe();
        iterated[Symbol.dispose]();
        responding.unsubscribe();
        several[Symbol.dispose]();
        several[Symbol.dispose]();
        expect(bus.subscriptionCount()).toBe(0);
      });

      it('listening delivers from every subject until disposed', async () => {
        const got: string[] = [];
        const listener = listening(bus, [`${p}.x`, `${p}.y.*`], (msg) => void got.push(msg.subject));
        bus.publish(`${p}.x`);
        bus.publish(`${p}.y.1`);
        await bus.flush();
        listener[Symbol.dispose]();
        bus.publish(`${p}.x`);
        await bus.flush();
        expect(got).toEqual([`${p}.x`, `${p}.y.1`]);
      });

      it('listening releases what it attached when a later subject is invalid', async () => {
        const keep = bus.subscribe(`${p}.keep`, () => undefined);
        const before = bus.subscriptionCount();
        const got: string[] = [];
        const err = thrown(() => listening(bus, [`${p}.a`, `${p}.b.>`, 'bad subject'], (msg) => void got.push(msg.subject)));
        expect(err.code).toBe('invalid_args');
        expect(err.details).toEqual({ field: 'subject', value: 'bad subject' });
        expect(bus.subscriptionCount()).toBe(before);

        bus.publish(`${p}.a`);
        bus.publish(`${p}.b.c`);
        await bus.flush();
        expect(got).toEqual([]);
        expect(keep.closed).toBe(false);
      });

      it('close() delivers what was published, ends iterators and makes further use fail', async () => {
        const iterated = bus.subscribe(`${p}.c`);
        const got: string[] = [];
        const loop = consume(iterated, got);
        const handled = bus.subscribe(`${p}.d`, () => undefined);
        bus.subscribe(`${p}.slow`, () => undefined);
        const pending = rejection(bus.request(`${p}.slow`, undefined, { timeoutMs: 10_000 }));
        bus.publish(`${p}.c`, bytes('before close'));

        await bus.close();
        await within(loop, 2000, 'iterator loop after close');
        expect(got).toEqual(['before close']);
        expect(iterated.closed).toBe(true);
        expect(handled.closed).toBe(true);
        expect(bus.subscriptionCount()).toBe(0);
        expect((await within(pending, 2000, 'pending request')).code).toBe('unavailable');

        expect(thrown(() => bus.publish(`${p}.c`)).code).toBe('unavailable');
        expect(thrown(() => bus.subscribe(`${p}.c`)).code).toBe('unavailable');
        expect(thrown(() => bus.respond(`${p}.c`, () => bytes(''))).code).toBe('unavailable');
        expect((await rejection(bus.request(`${p}.c`))).code).toBe('unavailable');
        expect((await rejection(bus.flush())).code).toBe('unavailable');
        await bus.close(); // idempotent
      });
    });

    describe('handler errors', () => {
      it('a throwing handler is reported and does not stop delivery to anyone', async () => {
        const reported: string[] = [];
        const own = await makeBus({ onHandlerError: (error, subject) => void reported.push(`${subject}: ${(error as Error).message}`) });
        try {
          const calls: string[] = [];
          const good: string[] = [];
          own.subscribe(`${p}.h`, (msg) => {
            calls.push(text(msg.data));
            throw new Error(`sync ${text(msg.data)}`);
          });
          own.subscribe(`${p}.h`, async (msg) => {
            throw new Error(`async ${text(msg.data)}`);
          });
          own.subscribe(`${p}.h`, (msg) => void good.push(text(msg.data)));
          // A responder hit by a plain publish has nobody to answer: its failure is reported too.
          own.respond(`${p}.r`, () => {
            throw new Error('unanswered');
          });

          own.publish(`${p}.h`, bytes('1'));
          own.publish(`${p}.h`, bytes('2'));
          own.publish(`${p}.r`);
          await vi.waitFor(() => expect(reported).toHaveLength(5));
          expect(good).toEqual(['1', '2']);
          expect(calls).toEqual(['1', '2']); // the failing handler keeps receiving
          expect(reported.sort()).toEqual([`${p}.h: async 1`, `${p}.h: async 2`, `${p}.h: sync 1`, `${p}.h: sync 2`, `${p}.r: unanswered`]);
        } finally {
          await own.close();
        }
      });

      it('without onHandlerError, failures are written to stderr', async () => {
        const stderr = vi.spyOn(console, 'error').mockImplementation(() => undefined);
        try {
          bus.subscribe(`${p}.h`, () => {
            throw new Error('to stderr');
          });
          bus.publish(`${p}.h`);
          await vi.waitFor(() => expect(stderr).toHaveBeenCalledTimes(1));
          expect(String(stderr.mock.calls[0]![0])).toContain(`${p}.h`);
          expect((stderr.mock.calls[0]![1] as Error).message).toBe('to stderr');
        } finally {
          stderr.mockRestore();
        }
      });
    });
  });
}
