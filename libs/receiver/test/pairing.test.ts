import { chmod, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeGenericClientConstructor, Metadata, type ServiceError } from '@grpc/grpc-js';
import type { Bus } from '@kiln/bus';
import { describe, expect, it } from 'vitest';
import { busClient, remotePb as pb } from '@kiln/contracts';
import { deadline, fromGrpcError, PairingServiceService, previewReceiver } from '@kiln/contracts/grpc';
import { memoryDestination } from '@kiln/logging';
import { pinnedChannelCredentials, type PeerIdentity } from '@kiln/remote-identity';
import { bundleFor, deviceYaml, startReceiver, writeKeyFile, type ReceiverHarness } from './harness.js';

/** Receiver control over the bus, as the gateway and the CLI reach it. */
const control = (bus: Bus) => busClient(bus, pb.ReceiverControlServiceDefinition);

const { PAIR_STATE_APPROVED: APPROVED, PAIR_STATE_PENDING: PENDING, PAIR_STATE_UNPAIRED: UNPAIRED, PAIR_STATE_PROVE_KEY: PROVE_KEY } = pb.PairState;

type RawRequestPair = (req: pb.RequestPairRequest, md: Metadata, options: { deadline: Date }, cb: (err: ServiceError | null, res: pb.RequestPairResponse) => void) => void;

/** One RequestPair on a fresh connection that presents `tls` but sends whatever `request` says (what a hostile client can do). */
async function rawRequestPair(h: ReceiverHarness, tls: PeerIdentity, request: pb.RequestPairRequest): Promise<pb.RequestPairResponse> {
  const receiver = h.service.receiver.identity;
  const Client = makeGenericClientConstructor(PairingServiceService, 'PairingService');
  const client = new Client(h.address, pinnedChannelCredentials(tls, receiver), { 'grpc.ssl_target_name_override': 'kiln-receiver' });
  try {
    const call = (client as unknown as { requestPair: RawRequestPair }).requestPair.bind(client);
    return await new Promise((resolve, reject) => call(request, new Metadata(), { deadline: deadline() }, (err, res) => (err ? reject(fromGrpcError(err)) : resolve(res))));
  } finally {
    client.close();
  }
}

describe('pairing', () => {
  it('a closed window refuses; an open one records a pending peer that can do nothing until approved', async () => {
    const h = await startReceiver();
    const offloader = await h.offloader('office');
    const preview = await previewReceiver(h.address, offloader);
    expect(preview.pin).toBe(h.service.receiver.identity.fingerprint);
    expect(preview.identity).toMatchObject({ dashboardId: h.service.receiver.identity.dashboardId, pairingOpen: false, protocolVersion: 1 });

    const client = h.client(offloader, preview.pin);
    await expect(client.requestPair()).rejects.toMatchObject({ code: 'permission_denied', message: expect.stringMatching(/pairing window is closed/) });
    expect((await control(h.bus).getIdentity({})).peers).toEqual([]);

    await control(h.bus).setPairingWindow({ open: true, timeoutS: 60 });
    expect((await client.requestPair()).state).toBe(PENDING);
    expect((await client.pairStatus()).state).toBe(PENDING);
    await expect(client.hasBundle('0'.repeat(64))).rejects.toMatchObject({ code: 'permission_denied', message: expect.stringMatching(/not approved/) });
    await expect(client.submitBundle(await bundleFor('a.yaml', deviceYaml('a')))).rejects.toMatchObject({ code: 'permission_denied' });

    const identity = await control(h.bus).getIdentity({});
    expect(identity.peers).toEqual([expect.objectContaining({ dashboardId: offloader.dashboardId, fingerprint: offloader.fingerprint, state: PENDING })]);
    await control(h.bus).approvePeer({ peer: offloader.fingerprint });
    expect((await client.pairStatus()).state).toBe(APPROVED);
    expect(await client.hasBundle('0'.repeat(64))).toBe(false);
    expect((await client.submitBundle(await bundleFor('a.yaml', deviceYaml('a')))).sent).toBe(true);
  });

  it("a request carrying another offloader's certificate files nothing and is refused once the connection is known; the honest request still works", async () => {
    const h = await startReceiver();
    const victim = await h.offloader('victim');
    const attacker = await h.offloader('attacker');
    await control(h.bus).setPairingWindow({ open: true, timeoutS: 60 });
    const pin = h.service.receiver.identity.fingerprint;
    const forged = { dashboardId: attacker.dashboardId, name: 'Victim laptop', certificatePem: victim.certPem, receiverFingerprint: pin, pairingKey: '' };

    // The attacker's handshake proves no key the receiver knows: the victim's certificate is not filed.
    expect((await rawRequestPair(h, attacker, forged)).state).toBe(PROVE_KEY);
    expect(h.service.receiver.peers.list()).toEqual([]);
    // With its own certificate trusted in the handshake, the attacker's connection is known: the mismatch is refused outright.
    expect((await rawRequestPair(h, attacker, { ...forged, certificatePem: attacker.certPem })).state).toBe(PROVE_KEY);
    await expect(rawRequestPair(h, attacker, forged)).rejects.toMatchObject({
      code: 'permission_denied',
      message: expect.stringMatching(new RegExp(`fingerprint ${victim.fingerprint}\\) is not the certificate this connection presents \\(${attacker.fingerprint}`)),
    });
    expect(h.service.receiver.peers.list()).toEqual([]);
    expect((await control(h.bus).getIdentity({})).peers).toEqual([]);

    expect((await h.client(victim).requestPair()).state).toBe(PENDING);
    expect(h.service.receiver.peers.list()).toEqual([expect.objectContaining({ dashboardId: victim.dashboardId, name: 'victim', fingerprint: victim.fingerprint, state: 'pending' })]);
  });

  it.each([
    ['a newline', 'office\nApproved: trusted-host'],
    ['a terminal escape', 'office\u001b[2K\u001b[1Gtrusted'],
    ['NUL', 'office\u0000'],
    ['a bidi override', 'office\u202egnp.exe'],
    ['65 characters', 'o'.repeat(65)],
  ])('an offloader name with %s is refused (invalid_args naming it) and nothing is filed', async (_label, name) => {
    const h = await startReceiver();
    await control(h.bus).setPairingWindow({ open: true, timeoutS: 60 });
    const offloader = await h.offloader('office');
    await expect(h.client({ ...offloader, name }).requestPair()).rejects.toMatchObject({
      code: 'invalid_args',
      message: expect.stringContaining(`name: must be 1-64 characters without control characters`),
      details: { field: 'name', value: name },
    });
    expect(h.service.receiver.peers.list()).toEqual([]);
    expect((await h.client({ ...offloader, name: 'Office PC (Zoë)' }).requestPair()).state).toBe(PENDING);
    expect(h.service.receiver.peers.list()).toEqual([expect.objectContaining({ name: 'Office PC (Zoë)' })]);
  });

  it('bounds what an open window lets strangers do: a day at most, 16 pending requests', async () => {
    const h = await startReceiver();
    await expect(control(h.bus).setPairingWindow({ open: true, timeoutS: 90_000 })).rejects.toMatchObject({ code: 'invalid_args', message: expect.stringMatching(/timeout_s: at most 86400/) });
    await control(h.bus).setPairingWindow({ open: true, timeoutS: 60 });
    for (let i = 0; i < 16; i++) expect((await h.client(await h.offloader(`o${i}`)).requestPair()).state).toBe(PENDING);
    await expect(h.client(await h.offloader('o16')).requestPair()).rejects.toMatchObject({ code: 'unavailable', message: expect.stringMatching(/16 requests already wait/) });
    // Approving one makes room.
    await control(h.bus).approvePeer({ peer: h.service.receiver.peers.list()[0]!.dashboardId });
    expect((await h.client(await h.offloader('o16')).requestPair()).state).toBe(PENDING);
  });

  it('the pairing window closes by itself', async () => {
    const h = await startReceiver();
    await control(h.bus).setPairingWindow({ open: true, timeoutS: 1 });
    expect(h.service.receiver.window.isOpen).toBe(true);
    await new Promise((r) => setTimeout(r, 1_100));
    expect((await control(h.bus).getIdentity({})).pairingOpen).toBe(false);
  });

  it('a client pinned to another fingerprint is refused before any call, and so after a rotation', async () => {
    const h = await startReceiver();
    const offloader = await h.offloader('office');
    const impostorPin = (await h.offloader('other')).fingerprint;
    await expect(h.client(offloader, impostorPin).previewIdentity()).rejects.toMatchObject({ code: 'permission_denied', message: expect.stringMatching(/does not match the pinned/) });

    const client = await h.paired(offloader);
    expect(await client.hasBundle('0'.repeat(64))).toBe(false);
    const before = h.service.receiver.identity.fingerprint;
    const rotated = await control(h.bus).rotateIdentity({});
    expect(rotated.fingerprint).not.toBe(before);
    expect(rotated.dashboardId).toBe(h.service.receiver.identity.dashboardId);
    // New connections meet the new certificate: a client holding the old pin is refused at the handshake.
    await expect(h.client(offloader, before).hasBundle('0'.repeat(64))).rejects.toMatchObject({ code: 'permission_denied', message: expect.stringMatching(/does not match the pinned/) });
    // Once the person confirmed the new pin, the (still approved) offloader carries on.
    expect((await previewReceiver(h.address, offloader)).pin).toBe(rotated.fingerprint);
    const again = h.client(offloader, rotated.fingerprint);
    expect((await again.requestPair()).state).toBe(APPROVED);
    expect(await again.hasBundle('0'.repeat(64))).toBe(false);
  });

  it('the receiver re-checks the confirmed pin at request time', async () => {
    const h = await startReceiver();
    const offloader = await h.offloader('office');
    await control(h.bus).setPairingWindow({ open: true, timeoutS: 60 });
    await expect(
      h.service.receiver.requestPair({ dashboardId: offloader.dashboardId, name: 'x', certificatePem: offloader.certPem, receiverFingerprint: 'f'.repeat(64), pairingKey: '' }, undefined),
    ).rejects.toMatchObject({ code: 'failed_precondition', message: expect.stringMatching(/receiver pin mismatch/) });
    expect(h.service.receiver.peers.list()).toEqual([]);
  });

  it('an unpaired client is refused every build call; a removed peer is refused again', async () => {
    const h = await startReceiver();
    const stranger = h.client(await h.offloader('stranger'));
    expect((await stranger.pairStatus()).state).toBe(UNPAIRED);
    await expect(stranger.hasBundle('0'.repeat(64))).rejects.toMatchObject({ code: 'not_authenticated', message: expect.stringMatching(/not paired/) });
    await expect(stranger.submitBundle(await bundleFor('a.yaml', deviceYaml('a')))).rejects.toMatchObject({ code: 'not_authenticated' });
    await expect(stranger.startBuild({ bundleSha256: '0'.repeat(64), configuration: 'a.yaml', action: pb.BuildAction.BUILD_ACTION_COMPILE })).rejects.toMatchObject({ code: 'not_authenticated' });
    const status = stranger.queueStatus();
    await expect(status.next()).rejects.toMatchObject({ code: 'not_authenticated' });
    expect(await readdir(join(h.dataDir, 'receiver', 'bundles')).catch(() => [])).toEqual([]);

    const offloader = await h.offloader('office');
    const client = await h.paired(offloader);
    expect(await client.hasBundle('0'.repeat(64))).toBe(false);
    expect((await control(h.bus).removePeer({ peer: offloader.dashboardId })).removed).toBe(true);
    await expect(client.hasBundle('0'.repeat(64))).rejects.toMatchObject({ code: 'not_authenticated' });
    expect((await client.pairStatus()).state).toBe(UNPAIRED);
  });

  it('the identity and the pairings survive a restart (persisted before they are announced)', async () => {
    const h = await startReceiver();
    const approved = await h.offloader('approved');
    await h.paired(approved);
    const pending = await h.offloader('pending');
    await control(h.bus).setPairingWindow({ open: true, timeoutS: 60 });
    expect((await h.client(pending).requestPair()).state).toBe(PENDING);
    const before = h.service.receiver.identity;

    await h.restart();
    expect(h.service.receiver.identity).toEqual(before);
    expect(h.service.receiver.window.isOpen).toBe(false);
    const again = h.client(approved, before.fingerprint);
    expect((await again.pairStatus()).state).toBe(APPROVED);
    expect(await again.hasBundle('0'.repeat(64))).toBe(false);
    const stillPending = h.client(pending, before.fingerprint);
    expect((await stillPending.pairStatus()).state).toBe(PENDING);
    await expect(stillPending.hasBundle('0'.repeat(64))).rejects.toMatchObject({ code: 'permission_denied' });
  });

  it('an approved offloader id cannot be claimed by another key', async () => {
    const h = await startReceiver();
    const real = await h.offloader('real');
    await h.paired(real);
    const other = await h.offloader('other');
    await control(h.bus).setPairingWindow({ open: true, timeoutS: 60 });
    const impostor = h.client({ ...other, dashboardId: real.dashboardId });
    await expect(impostor.requestPair()).rejects.toMatchObject({ code: 'already_exists' });
    expect(h.service.receiver.peers.find(real.dashboardId)).toMatchObject({ fingerprint: real.fingerprint, state: 'approved' });
  });
});

describe('one-shot pairing key', () => {
  const KEY = 'k3y-0123456789abcdef-xyz';

  it('pairs once with the window closed, then a replay is refused', async () => {
    const h0 = await startReceiver();
    const keyFile = join(h0.root, 'pairing.key');
    await writeKeyFile(keyFile, KEY);
    const h = await startReceiver({ settings: { 'receiver.pairingKeyFile': keyFile } });
    const first = await h.offloader('first');
    const pin = (await previewReceiver(h.address, first)).pin;
    expect((await h.client(first, pin).previewIdentity()).pairingKeyArmed).toBe(true);
    await expect(h.client(first, pin).requestPair({ pairingKey: 'wrong-key-0123456789' })).rejects.toMatchObject({ code: 'permission_denied', message: expect.stringMatching(/does not match/) });
    const client = h.client(first, pin);
    expect((await client.requestPair({ pairingKey: KEY })).state).toBe(APPROVED);
    expect(await client.hasBundle('0'.repeat(64))).toBe(false);

    const second = await h.offloader('second');
    await expect(h.client(second, pin).requestPair({ pairingKey: KEY })).rejects.toMatchObject({ code: 'permission_denied', message: expect.stringMatching(/no pairing key is armed/) });
    expect(h.service.receiver.peers.list().map((p) => p.dashboardId)).toEqual([first.dashboardId]);
  });

  it('an expired key is refused', async () => {
    const h0 = await startReceiver();
    const keyFile = join(h0.root, 'pairing.key');
    await writeKeyFile(keyFile, KEY);
    const old = new Date(Date.now() - 2 * 3_600_000);
    await utimes(keyFile, old, old);
    const h = await startReceiver({ settings: { 'receiver.pairingKeyFile': keyFile, 'receiver.pairingKeyTtlS': '3600' } });
    const offloader = await h.offloader('late');
    await expect(h.client(offloader).requestPair({ pairingKey: KEY })).rejects.toMatchObject({ code: 'permission_denied', message: expect.stringMatching(/expired/) });
    expect(h.service.receiver.peers.list()).toEqual([]);
  });
});

describe('key files', () => {
  it('the identity is created owner-only (file 0600 in a 0700 dir); a key file others can read is used with a warning naming it and its mode', async () => {
    const logs = memoryDestination();
    const h = await startReceiver({ logs });
    const identityDir = join(h.dataDir, 'receiver', 'identity');
    const keyFile = join(identityDir, 'identity.json');
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    expect((await stat(identityDir)).mode & 0o777).toBe(0o700);
    const warnings = (): Array<Record<string, unknown>> => logs.records.filter((r) => r.level === 40 && r.file !== undefined);
    expect(warnings()).toEqual([]);

    const before = h.service.receiver.identity.fingerprint;
    await chmod(keyFile, 0o644);
    await h.restart();
    // Still the same identity: a warning, not a refusal.
    expect(h.service.receiver.identity.fingerprint).toBe(before);
    expect(warnings()).toEqual([
      expect.objectContaining({ file: keyFile, mode: '0644', msg: expect.stringContaining(`private key file ${keyFile} is accessible by group or others (mode 0644)`) }),
    ]);
  });

  it('a one-shot pairing key file others can read is reported once, and still pairs', async () => {
    const logs = memoryDestination();
    const scratch = await startReceiver();
    const keyFile = join(scratch.root, 'pairing.key');
    await writeFile(keyFile, 'k3y-0123456789abcdef-xyz\n', { mode: 0o640 });
    await chmod(keyFile, 0o640);
    const h = await startReceiver({ settings: { 'receiver.pairingKeyFile': keyFile }, logs });
    const offloader = await h.offloader('office');
    const client = h.client(offloader);
    expect((await client.previewIdentity()).pairingKeyArmed).toBe(true);
    expect((await client.previewIdentity()).pairingKeyArmed).toBe(true);
    expect(logs.records.filter((r) => r.file === keyFile)).toEqual([
      expect.objectContaining({ level: 40, mode: '0640', msg: expect.stringContaining(`pairing key file ${keyFile} is accessible by group or others (mode 0640)`) }),
    ]);
    expect((await client.requestPair({ pairingKey: 'k3y-0123456789abcdef-xyz' })).state).toBe(APPROVED);
  });
});
