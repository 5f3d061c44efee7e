import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Server, type ServerWritableStream } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { remotePb as pb } from '@kiln/contracts';
import { BuildServiceService, createReceiverClient, type BuildServiceServer } from '@kiln/contracts/grpc';
import { loadOrCreateIdentity, packBundle, PeerTrustStore, walkBundle } from '@kiln/remote-identity';
import { BundleStore } from '../src/bundle-store.js';
import { bundleFor, deviceYaml, startReceiver } from './harness.js';

let scratch: string;
beforeEach(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'kiln-bundle-'));
});
afterEach(async () => {
  await rm(scratch, { recursive: true, force: true });
});

const LIMITS = { maxExtractedBytes: 1024 * 1024, maxEntries: 100 };

async function bundleFile(entries: Parameters<typeof packBundle>[0]): Promise<string> {
  const file = join(scratch, `${randomBytes(4).toString('hex')}.tar.gz`);
  await writeFile(file, await packBundle(entries));
  return file;
}

describe('bundle checks', () => {
  it.each([
    ['a "../" path', [{ name: 'kitchen.yaml', data: 'x' }, { name: '../escape.yaml', data: 'x' }], /not a relative path/],
    ['a nested "../" path', [{ name: 'packages/../../escape.yaml', data: 'x' }], /not a relative path/],
    ['an absolute path', [{ name: '/tmp/escape.yaml', data: 'x' }], /not a relative path/],
    ['a symlink', [{ name: 'kitchen.yaml', data: 'x' }, { name: 'secrets.yaml', type: 'symlink' as const, linkname: '/etc/passwd' }], /is a symlink/],
    ['a hard link', [{ name: 'kitchen.yaml', data: 'x' }, { name: 'copy.yaml', type: 'link' as const, linkname: 'kitchen.yaml' }], /is a link/],
    ['a duplicate', [{ name: 'kitchen.yaml', data: 'x' }, { name: './kitchen.yaml', data: 'y' }], /appears twice/],
  ])('refuses %s and writes nothing outside the destination', async (_label, entries, message) => {
    const dest = join(scratch, 'build', 'src');
    await expect(walkBundle(await bundleFile(entries), LIMITS, dest)).rejects.toMatchObject({ code: 'invalid_args', message: expect.stringMatching(message) });
    expect((await readdir(scratch)).filter((f) => !f.endsWith('.tar.gz')).sort()).toEqual(['build']);
    expect(await readdir(join(scratch, 'build'))).toEqual(['src']);
    await expect(stat('/tmp/escape.yaml')).rejects.toThrow();
  });

  it.each([
    ['random bytes', () => randomBytes(4096), /not gzip data/],
    ['gzip of random bytes (no tar inside)', () => gzipSync(randomBytes(4096)), /not a tar archive inside/],
    ['a truncated bundle', async () => (await packBundle([{ name: 'kitchen.yaml', data: randomBytes(4096).toString('hex') }])).subarray(0, 200), /truncated/],
  ])('refuses %s as invalid_args saying what is wrong', async (_label, bytes, message) => {
    const file = join(scratch, 'bad.tar.gz');
    await writeFile(file, await bytes());
    const dest = join(scratch, 'build', 'src');
    await expect(walkBundle(file, LIMITS, dest)).rejects.toMatchObject({ code: 'invalid_args', message: expect.stringMatching(/^bundle is not a readable \.tar\.gz: /), details: { field: 'bundle' } });
    await expect(walkBundle(file, LIMITS)).rejects.toMatchObject({ code: 'invalid_args', message: expect.stringMatching(message) });
  });

  it('a missing bundle file is not blamed on the sender', async () => {
    await expect(walkBundle(join(scratch, 'gone.tar.gz'), LIMITS)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a gzip bomb and too many entries', async () => {
    const bomb = await bundleFile([{ name: 'big.yaml', data: Buffer.alloc(2 * 1024 * 1024) }]);
    await expect(walkBundle(bomb, LIMITS)).rejects.toMatchObject({ message: expect.stringMatching(/uncompressed/) });
    const many = await bundleFile(Array.from({ length: 101 }, (_, i) => ({ name: `f${i}.yaml`, data: 'x' })));
    await expect(walkBundle(many, LIMITS)).rejects.toMatchObject({ message: expect.stringMatching(/more than 100 entries/) });
  });

  it('refuses bytes that are not what the header announced, and never publishes them', async () => {
    const store = new BundleStore(join(scratch, 'bundles'), 4096, LIMITS);
    const bundle = await packBundle([{ name: 'kitchen.yaml', data: 'x' }]);
    const sha = createHash('sha256').update(bundle).digest('hex');
    const wrongHash = await store.begin('peer-1', { sha256: 'a'.repeat(64), sizeBytes: bundle.length });
    await wrongHash.write(bundle);
    await expect(wrongHash.commit()).rejects.toMatchObject({ code: 'invalid_args', message: expect.stringMatching(/SHA-256 mismatch/) });
    await wrongHash.abort();
    const lying = await store.begin('peer-1', { sha256: sha, sizeBytes: 10 });
    await expect(lying.write(randomBytes(5000))).rejects.toMatchObject({ message: expect.stringMatching(/exceeds the receiver's 4096-byte cap/) });
    await lying.abort();
    expect(await readdir(join(scratch, 'bundles', 'peer-1'))).toEqual([]);
    expect(await store.has('peer-1', 'a'.repeat(64))).toBe(false);
  });
});

describe('submit over gRPC', () => {
  it('an oversize bundle is refused while it arrives', async () => {
    const h = await startReceiver({ settings: { 'receiver.maxBundleBytes': '2048' } });
    const client = await h.paired(await h.offloader('office'));
    const big = await packBundle([{ name: 'kitchen.yaml', data: randomBytes(8192).toString('base64') }]);
    await expect(client.submitBundle(big)).rejects.toMatchObject({ code: 'invalid_args', message: expect.stringMatching(/2048-byte cap/) });
    const dir = join(h.dataDir, 'receiver', 'bundles');
    const owners = await readdir(dir).catch(() => []);
    for (const owner of owners) expect(await readdir(join(dir, owner))).toEqual([]);
  });

  it.each([
    ['"../"', [{ name: 'kitchen.yaml', data: deviceYaml('kitchen') }, { name: '../../escape.yaml', data: 'x' }], /not a relative path/],
    ['a symlink', [{ name: 'kitchen.yaml', data: deviceYaml('kitchen') }, { name: 'secrets.yaml', type: 'symlink' as const, linkname: '../../../../etc/passwd' }], /is a symlink/],
  ])('a bundle with %s is refused at submit and nothing is stored', async (_label, entries, message) => {
    const h = await startReceiver();
    const client = await h.paired(await h.offloader('office'));
    const bundle = await packBundle(entries);
    await expect(client.submitBundle(bundle)).rejects.toMatchObject({ code: 'invalid_args', message: expect.stringMatching(message) });
    expect(await client.hasBundle(createHash('sha256').update(bundle).digest('hex'))).toBe(false);
    await expect(stat(join(h.root, 'escape.yaml'))).rejects.toThrow();
    await expect(stat(join(h.configDir, '.esphome'))).rejects.toThrow();
  });

  it('random bytes sent as a bundle are refused as invalid_args and nothing is stored', async () => {
    const h = await startReceiver();
    const client = await h.paired(await h.offloader('office'));
    const junk = randomBytes(10_000);
    await expect(client.submitBundle(junk)).rejects.toMatchObject({ code: 'invalid_args', message: expect.stringMatching(/bundle is not a readable \.tar\.gz: not gzip data/) });
    expect(await client.hasBundle(createHash('sha256').update(junk).digest('hex'))).toBe(false);
  });

  it('a good bundle still builds after refused ones (the refusals left no state behind)', async () => {
    const h = await startReceiver();
    const client = await h.paired(await h.offloader('office'));
    await expect(client.submitBundle(await packBundle([{ name: '../x.yaml', data: 'x' }]))).rejects.toMatchObject({ code: 'invalid_args' });
    const { sha256 } = await client.submitBundle(await bundleFor('kitchen.yaml', deviceYaml('kitchen')));
    expect(await client.hasBundle(sha256)).toBe(true);
  });
});

describe('artifact download on the offloader side', () => {
  /** A stand-in receiver (same pinned TLS) that serves artifacts which are not what it announces. */
  async function lyingReceiver(parts: pb.DownloadArtifactsResponse[]) {
    const receiver = await loadOrCreateIdentity(join(scratch, 'r'), 'liar');
    const offloader = await loadOrCreateIdentity(join(scratch, 'o'), 'office');
    const server = new Server();
    server.addService(BuildServiceService, {
      downloadArtifacts: (call: ServerWritableStream<pb.DownloadArtifactsRequest, pb.DownloadArtifactsResponse>) => {
        for (const part of parts) call.write(part);
        call.end();
      },
    } as Partial<BuildServiceServer> as BuildServiceServer);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', new PeerTrustStore(receiver, [offloader.certPem]).serverCredentials(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    const client = createReceiverClient({ address: `127.0.0.1:${port}`, identity: offloader, pin: receiver.fingerprint, maxArtifactBytes: 4096 });
    return { client, close: () => (client.close(), server.forceShutdown()) };
  }

  const header = (name: string, data: Buffer, sha = createHash('sha256').update(data).digest('hex')): pb.DownloadArtifactsResponse => ({
    part: { $case: 'header', value: { name, sizeBytes: data.length, sha256: sha } },
  });
  const data = (bytes: Buffer): pb.DownloadArtifactsResponse => ({ part: { $case: 'data', value: bytes } });

  it('a hash mismatch is refused', async () => {
    const good = Buffer.from('firmware image');
    const { client, close } = await lyingReceiver([header('firmware.bin', good), data(Buffer.from('firmware imagf'))]);
    try {
      await expect(client.downloadArtifacts('b1')).rejects.toMatchObject({ message: expect.stringMatching(/firmware.bin: SHA-256 mismatch/) });
    } finally {
      close();
    }
  });

  it('artifacts over the cap, truncated, or with a path for a name are refused', async () => {
    const big = Buffer.alloc(5000, 1);
    for (const [parts, message] of [
      [[header('firmware.bin', big), data(big)], /download cap/],
      [[header('firmware.bin', Buffer.from('abcdef')), data(Buffer.from('abc'))], /received 3 bytes, announced 6/],
      [[header('../firmware.bin', Buffer.from('abc')), data(Buffer.from('abc'))], /not a bare file name/],
    ] as const) {
      const { client, close } = await lyingReceiver([...parts]);
      try {
        await expect(client.downloadArtifacts('b1')).rejects.toMatchObject({ message: expect.stringMatching(message) });
      } finally {
        close();
      }
    }
  });
});
