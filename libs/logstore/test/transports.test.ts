import { connectNatsBus, createInProcessBus } from '@kiln/bus';
import { natsOrSkip as connectTestNats, NATS_TEST_URL as NATS_URL, testNatsPrefix } from '@kiln/bus/testing';
import { createLogStoreBusClient, type LogStoreApi } from '@kiln/contracts';
import { createLogStoreGrpcClient } from '@kiln/contracts/grpc';
import { KilnError } from '@kiln/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LogStoreService } from '../src/index.js';
import { collect, numbered, startService, tempDir } from './helpers.js';

/** A namespace of its own on the shared server: other test runs may serve the same subjects. */
const PREFIX = testNatsPrefix();
const natsOrSkip = () => connectTestNats(PREFIX);

/** `listeners` counts what a follower holds on the side that feeds it: bus subscriptions, or store followers for gRPC. */
type Context = { client: LogStoreApi; service: LogStoreService; listeners(): number; teardown(): Promise<void> };
type Transport = { name: string; setup(): Promise<Context | undefined> };

const transports: Transport[] = [
  {
    name: 'in-process bus',
    async setup() {
      const bus = createInProcessBus();
      const { dir, cleanup } = await tempDir();
      const service = await startService(bus, dir);
      return { client: createLogStoreBusClient(bus), service, listeners: () => bus.subscriptionCount(), teardown: async () => (await service.stop(), await bus.close(), await cleanup()) };
    },
  },
  {
    name: 'NATS bus',
    async setup() {
      const serverBus = await natsOrSkip();
      if (!serverBus) return undefined;
      const clientBus = await connectNatsBus({ servers: NATS_URL, prefix: PREFIX });
      const { dir, cleanup } = await tempDir();
      const service = await startService(serverBus, dir);
      // The responders must have reached the server before another connection asks.
      await serverBus.flush();
      return {
        client: createLogStoreBusClient(clientBus),
        service,
        listeners: () => clientBus.subscriptionCount(),
        teardown: async () => (await service.stop(), await clientBus.close(), await serverBus.close(), await cleanup()),
      };
    },
  },
  {
    name: 'gRPC',
    async setup() {
      const bus = createInProcessBus();
      const { dir, cleanup } = await tempDir();
      const service = await startService(bus, dir, '127.0.0.1:0');
      const client = createLogStoreGrpcClient(service.grpcAddress!);
      return { client, service, listeners: () => service.store.followerCount(), teardown: async () => (client.shutdown(), await service.stop(), await bus.close(), await cleanup()) };
    },
  },
];

describe.each(transports)('log store over $name', (transport) => {
  let ctx: Awaited<ReturnType<Transport['setup']>>;
  // Unique ids: the NATS server is shared with other test runs.
  const id = (name: string) => `${name}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  beforeAll(async () => {
    ctx = await transport.setup();
  });
  afterAll(async () => ctx?.teardown());

  it('appends, reads, closes, lists and deletes', async ({ skip }) => {
    if (!ctx) return skip('NATS is not running (set CI=true to make this a failure)');
    const job = id('job');
    expect(await ctx.client.append(job, numbered(0, 3))).toEqual({ firstSeq: 0, lineCount: 3 });
    expect(await ctx.client.close(job)).toEqual({ lineCount: 3 });
    expect(await ctx.client.read(job, { tail: 2 })).toMatchObject({ firstSeq: 1, lines: ['line 1', 'line 2'], closed: true });
    expect((await ctx.client.list()).map((l) => l.jobId)).toContain(job);
    expect(await ctx.client.delete(job)).toBe(true);
    expect(await ctx.client.delete(job)).toBe(false);
  });

  it('follows history then live then closed, each line once', async ({ skip }) => {
    if (!ctx) return skip('NATS is not running');
    const job = id('follow');
    await ctx.client.append(job, numbered(0, 2500));
    await new Promise((r) => setTimeout(r, 30));
    const following = collect(ctx.client.follow(job));
    await new Promise((r) => setTimeout(r, 30));
    for (let i = 2500; i < 4000; i += 250) await ctx.client.append(job, numbered(i, 250));
    await ctx.client.close(job);
    const { seqs, closed } = await following;
    expect(closed).toBe(4000);
    expect(seqs).toEqual(Array.from({ length: 4000 }, (_, i) => i));
  });

  it('carries error codes and the offending value across the transport', async ({ skip }) => {
    if (!ctx) return skip('NATS is not running');
    const notFound = await ctx.client.read(id('missing')).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(KilnError);
    expect((notFound as KilnError).code).toBe('not_found');
    const invalid = await ctx.client.append('../escape', ['x']).catch((e: unknown) => e);
    expect(invalid).toMatchObject({ code: 'invalid_args', details: { field: 'job_id', value: '../escape' } });
    const followMissing = await collect(ctx.client.follow(id('ghost'))).catch((e: unknown) => e);
    expect((followMissing as KilnError).code).toBe('not_found');
  });

  it('a disposed follower leaves no listener behind', async ({ skip }) => {
    if (!ctx) return skip('NATS is not running');
    const job = id('leave');
    await ctx.client.append(job, ['a']);
    await new Promise((r) => setTimeout(r, 20));
    const baseline = ctx.listeners();
    const stream = ctx.client.follow(job);
    await stream.next();
    expect(ctx.listeners()).toBeGreaterThan(baseline);
    stream[Symbol.dispose]();
    await new Promise((r) => setTimeout(r, 50));
    expect(ctx.listeners()).toBe(baseline);
  });
});
