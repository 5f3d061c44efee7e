import { KilnError } from '@kiln/core';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNatsBus, ERROR_HEADER, type Bus } from '../src/index.js';
import { busConformance } from './conformance.js';

const SERVERS = '127.0.0.1:4222';

async function natsReachable(): Promise<boolean> {
  try {
    await (await connectNatsBus({ servers: SERVERS, timeoutMs: 2000 })).close();
    return true;
  } catch {
    return false;
  }
}

// Locally a missing server skips these tests; in CI it must fail them (each connect rejects loudly).
const skip = !(await natsReachable()) && process.env['CI'] !== 'true';

describe.skipIf(skip)(`NATS at ${SERVERS}`, () => {
  busConformance('nats', (options) => connectNatsBus({ servers: SERVERS, name: 'kiln-bus-test', ...options }));

  describe('wire format', () => {
    let bus: Bus;
    let raw: NatsConnection;
    const p = `kt${randomBytes(6).toString('hex')}`;

    beforeAll(async () => {
      bus = await connectNatsBus({ servers: SERVERS });
      raw = await connect({ servers: SERVERS });
    });

    afterAll(async () => {
      await bus?.close();
      await raw?.close();
    });

    it('reports its kind', () => {
      expect(bus.kind).toBe('nats');
    });

    it(`carries a responder's error as JSON in the ${ERROR_HEADER} header of an empty reply`, async () => {
      bus.respond(`${p}.fail`, () => {
        throw new KilnError('not_found', 'job not found', { job: 'x' });
      });
      await bus.flush(); // the responder is registered with the server before the other connection asks
      const reply = await raw.request(`${p}.fail`, undefined, { timeout: 2000 });
      expect(reply.data).toHaveLength(0);
      expect(JSON.parse(reply.headers?.get(ERROR_HEADER) ?? 'null')).toEqual({ code: 'not_found', message: 'job not found', details: { job: 'x' } });
    });

    it("turns unknown or malformed error codes from the wire into 'internal_error'", async () => {
      for (const [suffix, value] of [
        ['bogus', JSON.stringify({ code: 'bogus', message: 'odd', details: { a: 1 } })],
        ['garbled', '{not json'],
      ] as const) {
        raw.subscribe(`${p}.${suffix}`, {
          callback: (_err, msg) => {
            const h = headers();
            h.set(ERROR_HEADER, value);
            msg.respond(new Uint8Array(0), { headers: h });
          },
        });
      }
      await raw.flush();
      await expect(bus.request(`${p}.bogus`)).rejects.toMatchObject({ code: 'internal_error', message: 'odd', details: { a: 1 } });
      await expect(bus.request(`${p}.garbled`)).rejects.toMatchObject({ code: 'internal_error' });
    });
  });
});

describe('connectNatsBus', () => {
  it('rejects with unavailable naming the servers when NATS is unreachable', async () => {
    for (const servers of ['127.0.0.1:1', ['127.0.0.1:1', '127.0.0.1:2']]) {
      const err = await connectNatsBus({ servers, timeoutMs: 2000 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(KilnError);
      expect(err).toMatchObject({ code: 'unavailable', message: `cannot reach NATS at ${String(servers)}`, details: { servers } });
    }
  });
});
