import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeGenericClientConstructor, Server, type sendUnaryData, type ServerUnaryCall, type ServiceDefinition } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { certificateFingerprint, formatPin, loadOrCreateIdentity, parsePin, PeerTrustStore, peerFingerprint, pinnedChannelCredentials, probePeerCertificate, rotateIdentity, type PeerIdentity } from '../src/index.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-identity-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('identity', () => {
  it('is created once with an owner-only file, reloaded unchanged, and rotation keeps the dashboard id', async () => {
    const first = await loadOrCreateIdentity(join(dir, 'id'), 'receiver');
    expect(first.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect((await stat(join(dir, 'id', 'identity.json'))).mode & 0o777).toBe(0o600);
    const again = await loadOrCreateIdentity(join(dir, 'id'), 'other name');
    expect(again).toEqual(first);
    const rotated = await rotateIdentity(join(dir, 'id'));
    expect(rotated.dashboardId).toBe(first.dashboardId);
    expect(rotated.fingerprint).not.toBe(first.fingerprint);
    expect(await loadOrCreateIdentity(join(dir, 'id'), 'x')).toEqual(rotated);
  });

  it('pins are shown grouped and parsed back from what a person types', async () => {
    const id = await loadOrCreateIdentity(dir, 'r');
    expect(parsePin('pin', formatPin(id.fingerprint))).toBe(id.fingerprint);
    expect(() => parsePin('pin', 'abcd')).toThrow(/pin: must be a SHA-256 fingerprint/);
  });
});

/** One unary method answering with the caller's authenticated fingerprint (or "unknown"). */
const text = { serialize: (v: string) => Buffer.from(v), deserialize: (b: Buffer) => b.toString() };
const WHO_AM_I: ServiceDefinition = {
  whoAmI: {
    path: '/kiln.test.Who/WhoAmI',
    requestStream: false,
    responseStream: false,
    requestSerialize: text.serialize,
    requestDeserialize: text.deserialize,
    responseSerialize: text.serialize,
    responseDeserialize: text.deserialize,
  },
};
const WhoClient = makeGenericClientConstructor(WHO_AM_I, 'Who');

async function startServer(trust: PeerTrustStore): Promise<{ address: string; server: Server }> {
  const server = new Server();
  server.addService(WHO_AM_I, {
    whoAmI: (call: ServerUnaryCall<string, string>, cb: sendUnaryData<string>) => cb(null, peerFingerprint(call) ?? 'unknown'),
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', trust.serverCredentials(), (err, p) => (err ? reject(err) : resolve(p))));
  return { address: `127.0.0.1:${port}`, server };
}

function whoAmI(address: string, client: PeerIdentity, pinned: { certPem: string; fingerprint: string }): Promise<string> {
  const c = new WhoClient(address, pinnedChannelCredentials(client, pinned));
  return new Promise<string>((resolve, reject) => {
    c.makeUnaryRequest('/kiln.test.Who/WhoAmI', text.serialize, text.deserialize, 'who', { deadline: new Date(Date.now() + 5000) }, (err, res) => {
      c.close();
      if (err) reject(err);
      else resolve(res!);
    });
  });
}

describe('pinned TLS', () => {
  it('a trusted client is identified by its fingerprint, an unknown one connects without an identity', async () => {
    const receiver = await loadOrCreateIdentity(join(dir, 'r'), 'r');
    const known = await loadOrCreateIdentity(join(dir, 'k'), 'k');
    const stranger = await loadOrCreateIdentity(join(dir, 's'), 's');
    const trust = new PeerTrustStore(receiver, [known.certPem]);
    const { address, server } = await startServer(trust);
    try {
      const probed = await probePeerCertificate(address, stranger);
      expect(probed.fingerprint).toBe(receiver.fingerprint);
      expect(await whoAmI(address, known, probed)).toBe(known.fingerprint);
      expect(await whoAmI(address, stranger, probed)).toBe('unknown');
      // Trust changes apply to new connections.
      trust.setPeerCerts(receiver, [known.certPem, stranger.certPem]);
      expect(await whoAmI(address, stranger, probed)).toBe(stranger.fingerprint);
    } finally {
      server.forceShutdown();
    }
  });

  it('a server whose certificate is not the pinned one is refused during the handshake', async () => {
    const receiver = await loadOrCreateIdentity(join(dir, 'r'), 'r');
    const impostor = await loadOrCreateIdentity(join(dir, 'i'), 'i');
    const client = await loadOrCreateIdentity(join(dir, 'c'), 'c');
    const { address, server } = await startServer(new PeerTrustStore(impostor, [client.certPem]));
    try {
      // Pinned to the real receiver's certificate: the impostor's chain does not verify.
      await expect(whoAmI(address, client, { certPem: receiver.certPem, fingerprint: receiver.fingerprint })).rejects.toThrow(/UNAVAILABLE/);
      // Right anchor, wrong expected fingerprint: the pin check refuses it.
      await expect(whoAmI(address, client, { certPem: impostor.certPem, fingerprint: receiver.fingerprint })).rejects.toThrow(/does not match the pinned/);
      // Both right: the same server answers (the refusals above were the pins, not the server).
      expect(await whoAmI(address, client, { certPem: impostor.certPem, fingerprint: impostor.fingerprint })).toBe(client.fingerprint);
    } finally {
      server.forceShutdown();
    }
  });

  it('fingerprints are the SHA-256 of the certificate DER', async () => {
    const id = await loadOrCreateIdentity(dir, 'r');
    const { X509Certificate, createHash } = await import('node:crypto');
    expect(certificateFingerprint(id.certPem)).toBe(createHash('sha256').update(new X509Certificate(id.certPem).raw).digest('hex'));
  });
});
