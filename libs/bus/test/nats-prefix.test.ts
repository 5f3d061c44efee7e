import { randomBytes } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { connectNatsBus, type BusMessage } from '../src/index.js';

const SERVERS = '127.0.0.1:4222';
const reachable = await connectNatsBus({ servers: SERVERS, timeoutMs: 2000 }).then(
  async (b) => (await b.close(), true),
  () => false,
);

describe.skipIf(!reachable && process.env['CI'] !== 'true')('NATS subject prefix (namespaces on a shared server)', () => {
  it('buses with different prefixes never hear each other; the same prefix does, without seeing the prefix', async () => {
    const tag = randomBytes(4).toString('hex');
    const a1 = await connectNatsBus({ servers: SERVERS, prefix: `ns${tag}a` });
    const a2 = await connectNatsBus({ servers: SERVERS, prefix: `ns${tag}a` });
    const b = await connectNatsBus({ servers: SERVERS, prefix: `ns${tag}b` });
    const raw = await connect({ servers: SERVERS });
    try {
      const heardA: BusMessage[] = [];
      const heardB: BusMessage[] = [];
      const heardRaw: string[] = [];
      a2.subscribe('kiln.logstore.>', (m) => heardA.push(m));
      b.subscribe('kiln.logstore.>', (m) => heardB.push(m));
      raw.subscribe(`ns${tag}a.>`, { callback: (_e, m) => heardRaw.push(m.subject) });
      b.respond('kiln.logstore.read', () => new TextEncoder().encode('from b'));
      a2.respond('kiln.logstore.read', () => new TextEncoder().encode('from a'));
      await Promise.all([a2.flush(), b.flush(), raw.flush()]);

      a1.publish('kiln.logstore.lines.j1', new Uint8Array([1]));
      const reply = await a1.request('kiln.logstore.read', new Uint8Array());
      await a1.flush();
      await new Promise((r) => setTimeout(r, 100));

      expect(new TextDecoder().decode(reply.data)).toBe('from a');
      expect(heardA.map((m) => m.subject)).toEqual(['kiln.logstore.lines.j1', 'kiln.logstore.read']);
      expect(heardB).toEqual([]);
      expect(heardRaw).toEqual([`ns${tag}a.kiln.logstore.lines.j1`, `ns${tag}a.kiln.logstore.read`]);
    } finally {
      await Promise.all([a1.close(), a2.close(), b.close(), raw.close()]);
    }
  });

  it('refuses a prefix that is not a valid subject', async () => {
    await expect(connectNatsBus({ servers: SERVERS, prefix: 'bad prefix' })).rejects.toMatchObject({ code: 'invalid_args' });
  });
});
