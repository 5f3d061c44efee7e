import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createReceiverClient, previewReceiver } from '@kiln/contracts/grpc';
import { certificateFingerprint, loadOrCreateIdentity, ReceiverPairings } from '@kiln/remote-identity';
import type { ReceiverService } from '@kiln/receiver';
import { offloaderSubjects, receiverSubjects } from '@kiln/contracts';
import { Client, startStack, type Stack } from './harness.js';
import { SIM_BIN } from '@kiln/esphome-sim';
import { processAlive } from '@kiln/toolchain';
import { resolveBuildPaths } from '@kiln/core';

const stacks: Stack[] = [];
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
  for (const s of stacks.splice(0)) await s.close();
});

async function connect(options: Parameters<typeof startStack>[0]): Promise<{ stack: Stack; ws: Client }> {
  const stack = await startStack(options);
  stacks.push(stack);
  const ws = await Client.connect(stack.wsUrl);
  cleanups.push(() => ws.close());
  return { stack, ws };
}

describe('remote_build/* (receiver side)', () => {
  it('without a receiver on the bus the commands answer unavailable', async () => {
    const { ws } = await connect({});
    expect((await ws.call('remote_build/get_identity')).error_code).toBe('unavailable');
  });

  it('opens the window, lists the pending offloader, approves, removes and rotates', async () => {
    const { stack, ws } = await connect({ receiver: true });
    const receiver = stack.services.find((s) => s.name === 'receiver') as ReceiverService;
    const identity = (await ws.call('remote_build/get_identity')).result as Record<string, unknown>;
    expect(identity).toMatchObject({ pin_sha256: receiver.receiver.identity.fingerprint, listener_bound: true, pairing_open: false, peers: [] });

    const bad = await ws.call('remote_build/set_pairing_window', { open: 'yes' });
    expect(bad).toMatchObject({ error_code: 'invalid_args', details: { field: 'open' } });
    const opened = (await ws.call('remote_build/set_pairing_window', { open: true, timeout: 60 })).result as Record<string, unknown>;
    expect(opened.pairing_open).toBe(true);

    const dir = await mkdtemp(join(tmpdir(), 'kiln-offloader-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const offloader = await loadOrCreateIdentity(dir, 'office');
    const { pin } = await previewReceiver(receiver.grpcAddress!, offloader);
    expect(pin).toBe(identity.pin_sha256);
    const client = createReceiverClient({ address: receiver.grpcAddress!, identity: offloader, pin });
    cleanups.push(() => client.close());
    await client.requestPair();

    const listed = (await ws.call('remote_build/get_identity')).result as { peers: Array<Record<string, unknown>> };
    expect(listed.peers).toEqual([expect.objectContaining({ dashboard_id: offloader.dashboardId, pin_sha256: offloader.fingerprint, status: 'pending', approved_at: null })]);
    expect((await ws.call('remote_build/approve_peer', { dashboard_id: 'nobody' })).error_code).toBe('not_found');
    const approved = (await ws.call('remote_build/approve_peer', { dashboard_id: offloader.dashboardId })).result as Record<string, unknown>;
    expect(approved).toMatchObject({ status: 'approved', approved_at: expect.any(String) });
    expect(await client.hasBundle('0'.repeat(64))).toBe(false);

    expect((await ws.call('remote_build/remove_peer', { dashboard_id: offloader.dashboardId })).result).toEqual({ removed: true });
    await expect(client.hasBundle('0'.repeat(64))).rejects.toMatchObject({ code: 'not_authenticated' });

    const rotated = (await ws.call('remote_build/rotate_identity')).result as Record<string, unknown>;
    expect(rotated.pin_sha256).not.toBe(identity.pin_sha256);
    expect(rotated.dashboard_id).toBe(identity.dashboard_id);
  });
});

describe('remote_build/* (offloader side, served by the firmware service)', () => {
  async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
    for (let i = 0; i < 200; i++) {
      const v = await fn();
      if (ok(v)) return v;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('condition never held');
  }

  it('settings: defaults, strict validation naming the field, persisted atomically', async () => {
    const { stack, ws } = await connect({});
    const first = (await ws.call('remote_build/get_offloader_settings')).result as { identity: Record<string, unknown> };
    expect(first).toEqual({ remote_builds_enabled: true, version_match_policy: 'any', include_local_in_pool: false, pairings: [], identity: expect.any(Object) });
    expect(await ws.call('remote_build/set_offloader_settings', { remote_builds_enabled: 'false' })).toMatchObject({ error_code: 'invalid_args', details: { field: 'remote_builds_enabled' } });
    expect(await ws.call('remote_build/set_offloader_settings', { version_match_policy: 'minor' })).toMatchObject({ error_code: 'invalid_args', details: { field: 'version_match_policy', value: 'minor' } });
    expect(await ws.call('remote_build/set_offloader_settings', { bogus: 1 })).toMatchObject({ error_code: 'invalid_args' });
    const set = (await ws.call('remote_build/set_offloader_settings', { version_match_policy: 'release', include_local_in_pool: true })).result;
    expect(set).toMatchObject({ remote_builds_enabled: true, version_match_policy: 'release', include_local_in_pool: true });
    const file = join(stack.configDir, '..', 'data', 'offloader', 'settings.json');
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ remote_builds_enabled: true, version_match_policy: 'release', include_local_in_pool: true });
  });

  it("settings carry this host's offloader identity: created on first read (0600), the same on every answer", async () => {
    const { stack, ws } = await connect({});
    const identityFile = join(stack.configDir, '..', 'data', 'offloader', 'identity', 'identity.json');
    const { identity } = (await ws.call('remote_build/get_offloader_settings')).result as { identity: { dashboard_id: string; pin_sha256: string; name: string } };
    const stored = JSON.parse(await readFile(identityFile, 'utf8')) as { dashboardId: string; name: string; certPem: string };
    expect(identity).toEqual({ dashboard_id: stored.dashboardId, pin_sha256: certificateFingerprint(stored.certPem), name: stored.name });
    expect((await stat(identityFile)).mode & 0o777).toBe(0o600);
    expect(((await ws.call('remote_build/set_offloader_settings', { include_local_in_pool: true })).result as { identity: unknown }).identity).toEqual(identity);
    expect(((await ws.call('remote_build/get_offloader_settings')).result as { identity: unknown }).identity).toEqual(identity);
  });

  it('preview, request (pending until the receiver approves), list, disable, unpair; unknown pins are not_found', async () => {
    const { stack, ws } = await connect({ receiver: true });
    const receiver = stack.services.find((s) => s.name === 'receiver') as ReceiverService;
    const [hostname, portText] = [receiver.grpcAddress!.slice(0, receiver.grpcAddress!.lastIndexOf(':')), receiver.grpcAddress!.slice(receiver.grpcAddress!.lastIndexOf(':') + 1)];
    const port = Number(portText);
    expect(await ws.call('remote_build/preview_pair', { hostname, port: 70_000 })).toMatchObject({ error_code: 'invalid_args', details: { field: 'port' } });
    const preview = (await ws.call('remote_build/preview_pair', { hostname, port })).result as Record<string, unknown>;
    expect(preview).toMatchObject({ pin_sha256: receiver.receiver.identity.fingerprint, requires_pairing_key: false });

    // A pin that is not what the receiver presents is refused before anything is sent.
    expect((await ws.call('remote_build/request_pair', { hostname, port, pin_sha256: 'ab'.repeat(32) })).error_code).toBe('permission_denied');
    await ws.call('remote_build/set_pairing_window', { open: true });
    // Names the receiver lists for approval (or this host shows) carry no control characters.
    for (const field of ['offloader_label', 'receiver_label']) {
      expect(await ws.call('remote_build/request_pair', { hostname, port, pin_sha256: preview.pin_sha256, [field]: 'attic\u001b[2Kapproved' })).toMatchObject({
        error_code: 'invalid_args',
        details: { field, value: 'attic\u001b[2Kapproved' },
      });
    }
    expect(((await ws.call('remote_build/get_identity')).result as { peers: unknown[] }).peers).toEqual([]);
    const requested = (await ws.call('remote_build/request_pair', { hostname, port, pin_sha256: preview.pin_sha256, receiver_label: 'attic' })).result as { status: string };
    expect(requested.status).toBe('pending');
    expect((await ws.call('remote_build/get_offloader_settings')).result).toMatchObject({ pairings: [] });
    const pending = (await ws.call('remote_build/get_identity')).result as { peers: Array<{ dashboard_id: string; pin_sha256: string }> };
    // What the receiver lists as pending is the pin this host shows as its own.
    const own = ((await ws.call('remote_build/get_offloader_settings')).result as { identity: { pin_sha256: string; dashboard_id: string } }).identity;
    expect(pending.peers).toEqual([expect.objectContaining({ pin_sha256: own.pin_sha256, dashboard_id: own.dashboard_id })]);
    await ws.call('remote_build/approve_peer', { dashboard_id: pending.peers[0]!.dashboard_id });

    // Recorded once approved; eligible once its status stream is up.
    const listed = await until(
      async () => ((await ws.call('remote_build/get_offloader_settings')).result as { pairings: Array<Record<string, unknown>> }).pairings,
      (p) => p.length === 1 && p[0]!.eligible === true,
    );
    expect(listed[0]).toMatchObject({ label: 'attic', hostname, port, pin_sha256: preview.pin_sha256, enabled: true, eligible: true });

    expect(await ws.call('remote_build/set_pairing_enabled', { pin_sha256: preview.pin_sha256, enabled: 1 })).toMatchObject({ error_code: 'invalid_args', details: { field: 'enabled' } });
    expect((await ws.call('remote_build/set_pairing_enabled', { pin_sha256: 'cd'.repeat(32), enabled: false })).error_code).toBe('not_found');
    expect((await ws.call('remote_build/set_pairing_enabled', { pin_sha256: preview.pin_sha256, enabled: false })).result).toMatchObject({ enabled: false, eligible: false });
    const rows = JSON.parse(await readFile(join(stack.configDir, '..', 'data', 'offloader', 'receivers.json'), 'utf8')) as Array<Record<string, unknown>>;
    expect(rows).toEqual([expect.objectContaining({ pin: preview.pin_sha256, enabled: false, name: 'attic' })]);

    // edit_pairing_endpoint: arguments checked (naming the field and value), unknown pin, nothing listening.
    const edit = (args: Record<string, unknown>) => ws.call('remote_build/edit_pairing_endpoint', args);
    expect(await edit({ pin_sha256: preview.pin_sha256, hostname, port: 0 })).toMatchObject({ error_code: 'invalid_args', details: { field: 'port', value: 0 } });
    expect(await edit({ pin_sha256: preview.pin_sha256, hostname, port: '7054' })).toMatchObject({ error_code: 'invalid_args', details: { field: 'port', value: '7054' } });
    expect(await edit({ pin_sha256: preview.pin_sha256, hostname: 'a b', port })).toMatchObject({ error_code: 'invalid_args', details: { field: 'hostname', value: 'a b' } });
    expect(await edit({ pin_sha256: preview.pin_sha256, hostname: '', port })).toMatchObject({ error_code: 'invalid_args', details: { field: 'hostname' } });
    expect(await edit({ pin_sha256: 'xyz', hostname, port })).toMatchObject({ error_code: 'invalid_args', details: { field: 'pin_sha256', value: 'xyz' } });
    expect(await edit({ hostname, port })).toMatchObject({ error_code: 'invalid_args', details: { field: 'pin_sha256' } });
    expect(await edit({ pin_sha256: preview.pin_sha256, hostname, port, extra: 1 })).toMatchObject({ error_code: 'invalid_args' });
    expect(await edit({ pin_sha256: 'cd'.repeat(32), hostname, port })).toMatchObject({ error_code: 'not_found', details: { pin_sha256: 'cd'.repeat(32) } });
    // The same receiver at the same address: the probe passes, the row answers as the other commands do.
    expect((await edit({ pin_sha256: preview.pin_sha256.toUpperCase(), hostname, port })).result).toMatchObject({ hostname, port, pin_sha256: preview.pin_sha256, label: 'attic', enabled: false });

    expect(await ws.call('remote_build/unpair', { pin_sha256: 'not-a-pin' })).toMatchObject({ error_code: 'invalid_args', details: { field: 'pin_sha256' } });
    expect((await ws.call('remote_build/unpair', { pin_sha256: preview.pin_sha256 })).result).toEqual({ removed: true });
    expect((await ws.call('remote_build/unpair', { pin_sha256: preview.pin_sha256 })).result).toEqual({ removed: false });
    expect((await ws.call('remote_build/get_offloader_settings')).result).toMatchObject({ pairings: [] });
  });
});

describe('remote_build/submit_job, cancel_job, download_artifacts (a real receiver over gRPC on loopback)', () => {
  async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, what: string): Promise<T> {
    for (let i = 0; i < 600; i++) {
      const v = await fn();
      if (ok(v)) return v;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`never happened: ${what}`);
  }

  /** The stack's own receiver, paired with its firmware service (the offloader) through the WebSocket API. */
  async function paired(knobs: object): Promise<{ stack: Stack; ws: Client; pin: string; receiver: ReceiverService }> {
    const { stack, ws } = await connect({ receiver: true, devices: ['kitchen', 'stuck'], knobs, settings: { 'receiver.toolchain': SIM_BIN } });
    const receiver = stack.services.find((s) => s.name === 'receiver') as ReceiverService;
    const address = receiver.grpcAddress!;
    const hostname = address.slice(0, address.lastIndexOf(':'));
    const port = Number(address.slice(address.lastIndexOf(':') + 1));
    const pin = ((await ws.call('remote_build/preview_pair', { hostname, port })).result as { pin_sha256: string }).pin_sha256;
    await ws.call('remote_build/set_pairing_window', { open: true });
    await ws.call('remote_build/request_pair', { hostname, port, pin_sha256: pin, receiver_label: 'attic' });
    const pending = (await ws.call('remote_build/get_identity')).result as { peers: Array<{ dashboard_id: string }> };
    await ws.call('remote_build/approve_peer', { dashboard_id: pending.peers[0]!.dashboard_id });
    await until(async () => ((await ws.call('remote_build/get_offloader_settings')).result as { pairings: Array<{ eligible: boolean }> }).pairings, (p) => p[0]?.eligible === true, 'receiver eligible');
    return { stack, ws, pin, receiver };
  }

  const jobOf = (ws: Client, id: string) => async () => (await ws.call('firmware/get_job', { job_id: id })).result as { status: string; error: string | null; output: string[] };
  const done = (j: { status: string }) => ['completed', 'failed', 'cancelled'].includes(j.status);

  it('refuses bad arguments naming the field and value', async () => {
    const { ws } = await connect({});
    const pin = 'ab'.repeat(32);
    expect(await ws.call('remote_build/submit_job', { pin_sha256: pin, configuration: 'kitchen.yaml', bogus: 1 })).toMatchObject({ error_code: 'invalid_args', details: { field: 'bogus' } });
    expect(await ws.call('remote_build/submit_job', { pin_sha256: 'xyz', configuration: 'kitchen.yaml' })).toMatchObject({ error_code: 'invalid_args', details: { field: 'pin_sha256' } });
    expect(await ws.call('remote_build/submit_job', { pin_sha256: pin })).toMatchObject({ error_code: 'invalid_args', details: { field: 'configuration' } });
    const target = await ws.call('remote_build/submit_job', { pin_sha256: pin, configuration: 'kitchen.yaml', target: 'flash' });
    expect(target).toMatchObject({ error_code: 'invalid_args', details: { field: 'target', value: 'flash' } });
    expect(JSON.stringify(target)).toContain('must be one of compile, install (got \\"flash\\")');
    expect(await ws.call('remote_build/submit_job', { pin_sha256: pin, configuration: 'kitchen.yaml', target: 7 })).toMatchObject({ error_code: 'invalid_args', details: { field: 'target' } });
    // Nothing paired under that pin.
    expect(await ws.call('remote_build/submit_job', { pin_sha256: pin, configuration: 'kitchen.yaml' })).toMatchObject({ error_code: 'not_found' });
    expect(await ws.call('remote_build/cancel_job', { pin_sha256: pin })).toMatchObject({ error_code: 'invalid_args', details: { field: 'job_id' } });
    expect(await ws.call('remote_build/cancel_job', { pin_sha256: pin, job_id: 'nope' })).toMatchObject({ error_code: 'not_found' });
    expect(await ws.call('remote_build/download_artifacts', { pin_sha256: pin, job_id: 'nope', extra: true })).toMatchObject({ error_code: 'invalid_args', details: { field: 'extra' } });
    expect(await ws.call('remote_build/download_artifacts', { pin_sha256: pin, job_id: 'nope' })).toMatchObject({ error_code: 'not_found' });
  });

  it('sent with remote builds off and the pairing disabled: built on the receiver; download_artifacts returns its images byte for byte at their offsets', async () => {
    const { stack, ws, pin } = await paired({ default: { compileMs: 200, steps: 4 } });
    await ws.call('remote_build/set_offloader_settings', { remote_builds_enabled: false });
    expect((await ws.call('remote_build/set_pairing_enabled', { pin_sha256: pin, enabled: false })).result).toMatchObject({ enabled: false, eligible: false });

    const submitted = (await ws.call('remote_build/submit_job', { pin_sha256: pin, configuration: 'kitchen.yaml' })).result as { job_id: string; id: string; type: string; status: string };
    expect(submitted).toMatchObject({ job_id: submitted.id, type: 'compile', configuration: 'kitchen.yaml' });
    const job = await until(jobOf(ws, submitted.job_id), done, 'compile finished');
    expect(job.status, job.output.join('\n')).toBe('completed');
    expect(job.output.join('\n')).toMatch(/compiling on receiver attic \(127\.0\.0\.1:\d+\)/);

    const got = (await ws.call('remote_build/download_artifacts', { pin_sha256: pin, job_id: submitted.job_id })).result as { configuration: string; images: Array<{ name: string; offset: number; size: number; data_b64: string }> };
    expect(got.configuration).toBe('kitchen.yaml');
    expect(got.images.map((i) => [i.name, i.offset])).toEqual([
      ['firmware.bin', 0x10000],
      ['bootloader.bin', 0x1000],
      ['partitions.bin', 0x8000],
    ]);
    // What the receiver built, in its own build tree for this offloader.
    const offloader = await loadOrCreateIdentity(join(stack.configDir, '..', 'data', 'offloader', 'identity'), 'unused');
    const built = resolveBuildPaths(stack.configDir, 'kitchen.yaml', { dashboardId: offloader.dashboardId }).firmwareDir('kitchen');
    for (const image of got.images) {
      const data = Buffer.from(image.data_b64, 'base64');
      expect(data.length).toBe(image.size);
      expect(data.equals(await readFile(join(built, image.name)))).toBe(true);
    }
    expect(await ws.call('remote_build/download_artifacts', { pin_sha256: 'cd'.repeat(32), job_id: submitted.job_id })).toMatchObject({ error_code: 'not_found' });
  }, 60_000);

  it('install target: compiled on the receiver, flashed by the local upload; cancel_job kills the compile inside the receiver', async () => {
    const { stack, ws, pin } = await paired({ default: { compileMs: 200, uploadMs: 50, steps: 4 }, devices: { stuck: { hang: 'compile', spawnChild: true } } });
    const chain = (await ws.call('remote_build/submit_job', { pin_sha256: pin, configuration: 'kitchen.yaml', target: 'install', port: 'OTA' })).result as { job_id: string; upload: { id: string; port: string } };
    expect(chain.upload.port).toBe('OTA');
    const upload = await until(jobOf(ws, chain.upload.id), done, 'upload finished');
    expect(upload.status, upload.output.join('\n')).toBe('completed');
    expect(upload.output.join('\n')).toContain('OTA successful');

    const stuck = (await ws.call('remote_build/submit_job', { pin_sha256: pin, configuration: 'stuck.yaml', target: 'compile' })).result as { job_id: string };
    const offloader = await loadOrCreateIdentity(join(stack.configDir, '..', 'data', 'offloader', 'identity'), 'unused');
    const pidFile = join(resolveBuildPaths(stack.configDir, 'stuck.yaml', { dashboardId: offloader.dashboardId }).dataDir, 'sim-child.pid');
    const pid = await until(async () => Number(await readFile(pidFile, 'utf8').catch(() => '')) || 0, (p) => p > 0, 'the receiver compile spawned its child');
    expect(processAlive(pid)).toBe(true);
    expect(await ws.call('remote_build/cancel_job', { pin_sha256: 'cd'.repeat(32), job_id: stuck.job_id })).toMatchObject({ error_code: 'not_found' });
    expect((await ws.call('remote_build/cancel_job', { pin_sha256: pin, job_id: stuck.job_id })).result).toMatchObject({ sent: true, cancelled: true, id: stuck.job_id });
    expect((await until(jobOf(ws, stuck.job_id), done, 'cancelled')).status).toBe('cancelled');
    await until(async () => processAlive(pid), (alive) => !alive, 'the compile tree inside the receiver is gone');
    expect(await ws.call('remote_build/download_artifacts', { pin_sha256: pin, job_id: stuck.job_id })).toMatchObject({ error_code: 'failed_precondition' });
  }, 60_000);
});

describe('subscribe_events: remote-build state', () => {
  type Event = { event: string; data: Record<string, unknown> };

  /** The subscribe_events frames of `sub` after initial_state whose name starts with remote_build_. */
  const remoteEvents = (ws: Client, sub: number): Event[] =>
    ws.frames.filter((f) => f.message_id === sub && typeof f.event === 'string' && f.event.startsWith('remote_build_')).map((f) => ({ event: f.event!, data: f.data as Record<string, unknown> }));

  async function eventually(ws: Client, sub: number, count: number): Promise<Event[]> {
    for (let i = 0; i < 400 && remoteEvents(ws, sub).length < count; i++) await new Promise((r) => setTimeout(r, 25));
    return remoteEvents(ws, sub);
  }

  /** What `file` holds at the moment each message is published on `subject` (read synchronously inside publish). */
  function onDiskAtPublish(stack: Stack, subject: string, file: string): Array<string | undefined> {
    const seen: Array<string | undefined> = [];
    const publish = stack.bus.publish.bind(stack.bus);
    stack.bus.publish = ((s: string, data: Uint8Array, ...rest: unknown[]) => {
      if (s === subject) seen.push(existsSync(file) ? readFileSync(file, 'utf8') : undefined);
      return (publish as (...a: unknown[]) => unknown)(s, data, ...rest);
    }) as typeof stack.bus.publish;
    return seen;
  }

  it('without a receiver: initial_state says so (unavailable) and still carries the offloader', async () => {
    const { ws } = await connect({});
    const sub = ws.send('subscribe_events');
    const initial = await ws.next((f) => f.message_id === sub && f.event === 'initial_state');
    expect((initial.data as { remote_build: unknown }).remote_build).toEqual({
      receiver: null,
      receiver_error: { code: 'unavailable', message: expect.any(String) },
      offloader: expect.objectContaining({ remote_builds_enabled: true, pairings: [] }),
      offloader_error: null,
    });
  });

  it('receiver: window opened, pending, approved, removed, rotated, closed (and closed by itself) arrive in order, each once it is on disk', async () => {
    const { stack, ws } = await connect({ receiver: true });
    const receiver = stack.services.find((s) => s.name === 'receiver') as ReceiverService;
    const peersFile = join(stack.configDir, '..', 'data', 'receiver', 'peers.json');
    const identityFile = join(stack.configDir, '..', 'data', 'receiver', 'identity', 'identity.json');
    const peersAtPublish = onDiskAtPublish(stack, receiverSubjects.changed, peersFile);
    const sub = ws.send('subscribe_events');
    const initial = await ws.next((f) => f.message_id === sub && f.event === 'initial_state');
    const before = (initial.data as { remote_build: { receiver: Record<string, unknown> } }).remote_build.receiver;
    expect(before).toMatchObject({ pin_sha256: receiver.receiver.identity.fingerprint, pairing_open: false, peers: [] });

    const opened = (await ws.call('remote_build/set_pairing_window', { open: true, timeout: 600 })).result as Record<string, unknown>;
    const dir = await mkdtemp(join(tmpdir(), 'kiln-offloader-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const offloader = await loadOrCreateIdentity(dir, 'office');
    const client = createReceiverClient({ address: receiver.grpcAddress!, identity: offloader, pin: receiver.receiver.identity.fingerprint });
    cleanups.push(() => client.close());
    await client.requestPair();
    await eventually(ws, sub, 2);
    await ws.call('remote_build/approve_peer', { dashboard_id: offloader.dashboardId });
    await eventually(ws, sub, 3);
    await ws.call('remote_build/remove_peer', { dashboard_id: offloader.dashboardId });
    await eventually(ws, sub, 4);
    const rotated = (await ws.call('remote_build/rotate_identity')).result as Record<string, unknown>;
    await eventually(ws, sub, 5);
    const identityAfterRotation = readFileSync(identityFile, 'utf8');
    await ws.call('remote_build/set_pairing_window', { open: false });
    await ws.call('remote_build/set_pairing_window', { open: true, timeout: 1 });

    const events = await eventually(ws, sub, 8);
    const peer = { dashboard_id: offloader.dashboardId, name: 'office', pin_sha256: offloader.fingerprint };
    expect(events).toEqual([
      { event: 'remote_build_pairing_window_changed', data: { pairing_open: true, pairing_closes_at: opened.pairing_closes_at } },
      { event: 'remote_build_pair_status_changed', data: { ...peer, status: 'pending', requested_at: expect.any(String), approved_at: null } },
      { event: 'remote_build_pair_status_changed', data: { ...peer, status: 'approved', requested_at: expect.any(String), approved_at: expect.any(String) } },
      { event: 'remote_build_pair_status_changed', data: { ...peer, status: 'removed', requested_at: expect.any(String), approved_at: expect.any(String) } },
      { event: 'remote_build_identity_changed', data: rotated },
      { event: 'remote_build_pairing_window_changed', data: { pairing_open: false, pairing_closes_at: null } },
      { event: 'remote_build_pairing_window_changed', data: { pairing_open: true, pairing_closes_at: expect.any(String) } },
      // The one-second window closed by itself.
      { event: 'remote_build_pairing_window_changed', data: { pairing_open: false, pairing_closes_at: null } },
    ]);
    expect(rotated.pin_sha256).not.toBe(before.pin_sha256);
    expect(identityAfterRotation).toContain(String(rotated.dashboard_id));

    // Each peer change was in peers.json when it was announced.
    const peerStates = peersAtPublish.map((text) => (text === undefined ? undefined : (JSON.parse(text) as Array<{ state: string }>).map((p) => p.state)));
    expect(peerStates.slice(1, 4)).toEqual([['pending'], ['approved'], []]);
  });

  it('offloader: settings, pairing approved and eligible, disabled, enabled, unpaired arrive with the persisted state', async () => {
    const { stack, ws } = await connect({ receiver: true });
    const receiver = stack.services.find((s) => s.name === 'receiver') as ReceiverService;
    const offloaderDir = join(stack.configDir, '..', 'data', 'offloader');
    const settingsAtPublish = onDiskAtPublish(stack, offloaderSubjects.changed, join(offloaderDir, 'settings.json'));
    const pairingsAtPublish = onDiskAtPublish(stack, offloaderSubjects.changed, join(offloaderDir, 'receivers.json'));
    const sub = ws.send('subscribe_events');
    const initial = await ws.next((f) => f.message_id === sub && f.event === 'initial_state');
    expect((initial.data as { remote_build: { offloader: unknown } }).remote_build.offloader).toMatchObject({ remote_builds_enabled: true, version_match_policy: 'any', pairings: [] });
    const offloaderEvents = () => remoteEvents(ws, sub).filter((e) => e.event === 'remote_build_offloader_changed').map((e) => e.data);
    const until = async (ok: (last: Record<string, unknown> | undefined) => boolean): Promise<Record<string, unknown>> => {
      for (let i = 0; i < 400 && !ok(offloaderEvents().at(-1)); i++) await new Promise((r) => setTimeout(r, 25));
      expect(ok(offloaderEvents().at(-1))).toBe(true);
      return offloaderEvents().at(-1)!;
    };

    const set = (await ws.call('remote_build/set_offloader_settings', { version_match_policy: 'release' })).result;
    expect(await until((e) => e?.version_match_policy === 'release')).toEqual(set);
    expect(JSON.parse(settingsAtPublish.at(-1)!)).toMatchObject({ version_match_policy: 'release' });

    const address = receiver.grpcAddress!;
    const [hostname, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
    await ws.call('remote_build/set_pairing_window', { open: true });
    const { pin_sha256 } = (await ws.call('remote_build/preview_pair', { hostname, port })).result as { pin_sha256: string };
    await ws.call('remote_build/request_pair', { hostname, port, pin_sha256, receiver_label: 'attic' });
    // The receiver's page sees the request live: approve from there.
    const pending = await (async () => {
      for (let i = 0; i < 400; i++) {
        const e = remoteEvents(ws, sub).find((x) => x.event === 'remote_build_pair_status_changed');
        if (e) return e.data;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error('no pair status event');
    })();
    expect(pending).toMatchObject({ status: 'pending' });
    await ws.call('remote_build/approve_peer', { dashboard_id: pending.dashboard_id as string });

    // Recorded once approved (announced with receivers.json written), then eligible once connected.
    const pairing = { label: 'attic', hostname, port, pin_sha256, enabled: true };
    await until((e) => (e?.pairings as unknown[] | undefined)?.length === 1);
    const recordedAt = offloaderEvents().findIndex((e) => (e.pairings as unknown[]).length === 1);
    expect(JSON.parse(pairingsAtPublish.at(recordedAt - offloaderEvents().length)!)).toEqual([expect.objectContaining({ pin: pin_sha256, enabled: true })]);
    expect(await until((e) => (e?.pairings as Array<{ eligible: boolean }> | undefined)?.[0]?.eligible === true)).toMatchObject({ pairings: [{ ...pairing, eligible: true }] });

    await ws.call('remote_build/set_pairing_enabled', { pin_sha256, enabled: false });
    expect(await until((e) => (e?.pairings as Array<{ enabled: boolean }>)[0]?.enabled === false)).toMatchObject({ pairings: [{ ...pairing, enabled: false, eligible: false }] });
    expect(JSON.parse(pairingsAtPublish.at(-1)!)).toEqual([expect.objectContaining({ pin: pin_sha256, enabled: false })]);
    await ws.call('remote_build/set_pairing_enabled', { pin_sha256, enabled: true });
    expect(await until((e) => (e?.pairings as Array<{ eligible: boolean }>)[0]?.eligible === true)).toMatchObject({ pairings: [{ ...pairing, enabled: true, eligible: true }] });

    // The receiver going away makes it ineligible.
    await receiver.stop();
    expect(await until((e) => (e?.pairings as Array<{ eligible: boolean }>)[0]?.eligible === false)).toMatchObject({ pairings: [{ ...pairing, enabled: true, eligible: false }] });

    await ws.call('remote_build/unpair', { pin_sha256 });
    expect(await until((e) => (e?.pairings as unknown[]).length === 0)).toMatchObject({ pairings: [] });
    expect(JSON.parse(pairingsAtPublish.at(-1)!)).toEqual([]);
    // Nothing is announced twice in a row: each event is a change.
    const texts = offloaderEvents().map((e) => JSON.stringify(e));
    expect(texts.filter((t, i) => i > 0 && t === texts[i - 1])).toEqual([]);
  });
});

describe('subscribe_events: a pairing recorded by another process (kiln pair)', () => {
  it('is announced once the running host picks receivers.json up', async () => {
    const { stack, ws } = await connect({});
    const sub = ws.send('subscribe_events');
    await ws.next((f) => f.message_id === sub && f.event === 'initial_state');
    const pin = 'ab'.repeat(32);
    // What `kiln pair` writes (ReceiverPairings), here by hand: the host polls the file.
    await new ReceiverPairings(join(stack.configDir, '..', 'data', 'offloader')).save({ dashboardId: 'bench', name: 'bench box', address: '127.0.0.1:1', pin, enabled: true, pairedAtMs: 1 });
    const event = await ws.next((f) => f.message_id === sub && f.event === 'remote_build_offloader_changed');
    expect(event.data).toMatchObject({ pairings: [{ dashboard_id: 'bench', label: 'bench box', hostname: '127.0.0.1', port: 1, pin_sha256: pin, enabled: true, eligible: false }] });
  });
});
