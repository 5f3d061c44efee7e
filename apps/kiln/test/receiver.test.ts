import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectNatsBus, type Bus } from '@kiln/bus';
import { busClient, remotePb as pb } from '@kiln/contracts';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KILN, kilnPerTest, runKiln } from './cli-harness.js';

const NATS_URL = process.env.NATS_TEST_URL ?? 'nats://127.0.0.1:4222';
const KEY = 'pairing-key-0123456789abcdef';
const host = kilnPerTest();

let offloaderDir: string;
beforeEach(async () => {
  offloaderDir = await mkdtemp(join(tmpdir(), 'kiln-offloader-'));
});
afterEach(async () => {
  await rm(offloaderDir, { recursive: true, force: true });
});

async function grpcAddress(healthUrl: string): Promise<string> {
  const health = (await (await fetch(`${healthUrl}/health`)).json()) as { services: Array<{ name: string; health?: { detail?: Record<string, string> } }> };
  const address = health.services.find((s) => s.name === 'receiver')?.health?.detail?.grpc;
  if (!address) throw new Error(`no receiver gRPC address in ${JSON.stringify(health)}`);
  return address;
}

const EPHEMERAL = ['--set', 'supervisor.healthListen=127.0.0.1:0', '--set', 'receiver.grpcListen=127.0.0.1:0'];

describe('kiln receiver + kiln pair', () => {
  it('a headless receiver pairs once with its one-shot key; a replay of the key is refused', async () => {
    const receiverKey = join(host.dataDir, 'pairing.key');
    await writeFile(receiverKey, `${KEY}\n`, { mode: 0o600 });
    const offloaderKey = join(offloaderDir, 'key.txt');
    await writeFile(offloaderKey, KEY);
    const receiver = host.start(['receiver', ...EPHEMERAL, '--set', `receiver.pairingKeyFile=${receiverKey}`]);
    const address = await grpcAddress(await receiver.healthUrl());

    const first = await runKiln(['pair', address, '--yes', '--pairing-key-file', offloaderKey, '--data-dir', join(offloaderDir, 'a')]);
    expect(first.stderr).toBe('');
    expect(first.stdout).toMatch(/receiver pin: ([0-9A-F]{4} ){15}[0-9A-F]{4}/);
    expect(first.stdout).toContain('paired: approved');
    expect(first.code).toBe(0);
    const recorded = JSON.parse(await readFile(join(offloaderDir, 'a', 'offloader', 'receivers.json'), 'utf8')) as Array<Record<string, unknown>>;
    expect(recorded).toEqual([expect.objectContaining({ address, enabled: true, pin: expect.stringMatching(/^[0-9a-f]{64}$/) })]);

    const replay = await runKiln(['pair', address, '--yes', '--pairing-key-file', offloaderKey, '--data-dir', join(offloaderDir, 'b')]);
    expect(replay.code).toBe(1);
    expect(replay.stderr).toMatch(/no pairing key is armed/);
  });

  it('kiln pair asks before it requests and refuses to guess without a terminal', async () => {
    const receiver = host.start(['receiver', ...EPHEMERAL]);
    const address = await grpcAddress(await receiver.healthUrl());
    const res = await runKiln(['pair', address, '--data-dir', offloaderDir]);
    expect(res.stdout).toContain('receiver pin:');
    expect(res.stderr).toMatch(/run again with --yes/);
    expect(res.code).toBe(1);
    // With the window closed, a confirmed request is refused with the reason.
    const refused = await runKiln(['pair', address, '--yes', '--data-dir', offloaderDir]);
    expect(refused.stderr).toMatch(/pairing window is closed/);
    expect(refused.code).toBe(1);
    await expect(readFile(join(offloaderDir, 'offloader', 'receivers.json'))).rejects.toThrow();
  });

  it('over NATS: open the window, pair, approve from the CLI', async ({ skip }) => {
    const prefix = `t${process.pid}x${Math.random().toString(36).slice(2, 8)}`;
    const bus: Bus | undefined = await connectNatsBus({ servers: NATS_URL, timeoutMs: 2_000, prefix }).catch((err: unknown) => {
      if (process.env.CI === 'true') throw err;
      return undefined;
    });
    if (!bus) return skip('NATS is not running (CI=true makes this a failure)');
    try {
      const nats = ['--nats', NATS_URL, '--set', `natsPrefix=${prefix}`];
      const receiver = host.start(['receiver', ...EPHEMERAL, ...nats]);
      const address = await grpcAddress(await receiver.healthUrl());
      const opened = await runKiln(['receiver', 'open', '120', ...nats, '--data-dir', host.dataDir]);
      expect(opened.stdout).toMatch(/pairing window: open until/);

      const pairing = spawn(process.execPath, [KILN, 'pair', address, '--yes', '--wait', '60', '--data-dir', offloaderDir], { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
      let out = '';
      pairing.stdout.on('data', (d: Buffer) => (out += d.toString()));
      pairing.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((resolve) => pairing.on('exit', resolve));
      let pending: pb.Peer | undefined;
      for (let i = 0; i < 200 && !pending; i++) {
        pending = (await busClient(bus, pb.ReceiverControlServiceDefinition).getIdentity({})).peers.find((p) => p.state === pb.PairState.PAIR_STATE_PENDING);
        if (!pending) await new Promise((r) => setTimeout(r, 50));
      }
      expect(pending, out).toBeDefined();
      const listed = await runKiln(['receiver', 'identity', ...nats, '--data-dir', host.dataDir]);
      expect(listed.stdout).toContain(`PENDING  ${pending!.name} ${pending!.dashboardId}`);
      const approved = await runKiln(['receiver', 'approve', pending!.dashboardId, ...nats, '--data-dir', host.dataDir]);
      expect(approved.stdout).toContain('approved');
      expect(await exited).toBe(0);
      expect(out).toContain('paired: approved');
    } finally {
      await bus.close();
    }
  });
});
