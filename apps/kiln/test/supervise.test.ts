import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { connectNatsBus } from '@kiln/bus';
import { createLogStoreBusClient } from '@kiln/contracts';
import { createLogStoreGrpcClient } from '@kiln/contracts/grpc';
import { describe, expect, it } from 'vitest';
import { EPHEMERAL, kilnPerTest, records, runKiln, tempDataDir } from './cli-harness.js';

const NATS_URL = process.env.NATS_TEST_URL ?? 'nats://127.0.0.1:4222';

const host = kilnPerTest();

describe('kiln supervise (embedded default)', () => {
  it('brings up the log store, kiln status lists it healthy, SIGTERM stops it cleanly', async () => {
    const kiln = host.start(['supervise', ...EPHEMERAL]);
    await kiln.healthUrl();
    const status = await runKiln(['status', '--data-dir', host.dataDir]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/supervise \(pid \d+\): ready/);
    expect(status.stdout).toMatch(/logstore\s+healthy/);
    expect(status.stdout).toMatch(/firmware\s+healthy/);

    const json = await runKiln(['status', '--data-dir', host.dataDir, '--json']);
    const [reported] = JSON.parse(json.stdout) as Array<{ ready: boolean; services: Array<{ name: string; state: string; health: { detail: Record<string, string> } }> }>;
    expect(reported!.services.map((x) => [x.name, x.state])).toEqual([
      ['logstore', 'running'],
      ['catalog', 'running'],
      ['firmware', 'running'],
      ['devices', 'running'],
      ['gateway', 'running'],
    ]);

    // The log store is really there: reach it over its gRPC endpoint.
    const client = createLogStoreGrpcClient(reported!.services[0]!.health.detail.grpc!);
    await client.append('cli-job', ['hello from a client']);
    await client.close('cli-job');
    expect((await client.read('cli-job')).lines).toEqual(['hello from a client']);
    client.shutdown();
    expect(existsSync(join(host.dataDir, 'job-logs', 'cli-job.log'))).toBe(true);

    const { code } = await kiln.stop();
    expect(code).toBe(0);
    expect(existsSync(join(host.dataDir, 'run', 'supervise.json'))).toBe(false);
    const logs = records(kiln.output());
    expect(logs.some((l) => l.msg === 'stopped')).toBe(true);
    expect(logs.filter((l) => l.service === 'logstore').length).toBeGreaterThan(0);
  });

  it('controls one service while the process stays up', async () => {
    const kiln = host.start(['supervise', ...EPHEMERAL]);
    await kiln.healthUrl();
    const stop = await runKiln(['control', 'logstore', 'stop', '--data-dir', host.dataDir]);
    expect(stop).toMatchObject({ code: 0, stdout: 'logstore: held\n' });
    expect((await runKiln(['status', '--data-dir', host.dataDir])).stdout).toMatch(/logstore\s+held/);
    const restart = await runKiln(['control', 'logstore', 'start', '--data-dir', host.dataDir]);
    expect(restart.stdout).toBe('logstore: running\n');
    expect(kiln.child.exitCode).toBeNull();
    const bad = await runKiln(['control', 'nosuch', 'stop', '--data-dir', host.dataDir]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/"nosuch"/);
  });

  it('refuses a second host on the same data dir', async () => {
    const first = host.start(['supervise', ...EPHEMERAL]);
    await first.healthUrl();
    const second = host.start(['supervise', ...EPHEMERAL]);
    const { code } = await second.exited;
    expect(code).toBe(1);
    expect(second.output()).toMatch(/already runs with data dir .* \(pid \d+\)/);
  });

  it('kiln status with nothing running says so and fails', async () => {
    const status = await runKiln(['status', '--data-dir', host.dataDir]);
    expect(status.code).toBe(3);
    expect(status.stdout).toMatch(/no kiln host is running/);
  });
});

describe('bad input on the command line', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['unknown flag', ['supervise', '--colour'], /Unknown option '--colour'/],
    ['unknown service', ['supervise', '--services', 'logstore,firmwre'], /services: unknown service; known: logstore, catalog, firmware, devices, gateway, receiver \(got "firmwre"\)/],
    ['bad setting value', ['supervise', '--set', 'logstore.flushIntervalMs=soon'], /logstore\.flushIntervalMs = "soon" \(from flag --set logstore\.flushIntervalMs\)/],
    ['unknown setting section', ['supervise', '--set', 'logstor.x=1'], /unknown setting section\(s\): logstor/],
    ['malformed --set', ['supervise', '--set', 'novalue'], /--set takes key=value/],
    ['serve without NATS', ['serve', 'logstore'], /needs NATS: pass --nats/],
    ['bad NATS URL', ['supervise', '--nats', 'not a url'], /nats = "not a url" \(from flag --nats\)/],
    ['unknown command', ['frobnicate'], /unknown command "frobnicate"/],
    ['a too-short password (never echoed)', ['supervise', '--password', 'short', ...EPHEMERAL], /gateway\.password = "<redacted>" \(from flag --password\): must be at least 8 characters/],
  ];
  it.each(cases)('%s is refused with a message naming it', async (_name, args, message) => {
    const { dir, cleanup: done } = await tempDataDir();
    try {
      const result = await runKiln([...args, '--data-dir', dir], { HOME: dir });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(existsSync(join(dir, 'run', 'supervise.json'))).toBe(false);
    } finally {
      await done();
    }
  });
});

describe('help', () => {
  const commands: Array<[string, RegExp]> = [
    ['supervise', /kiln supervise \[--services a,b\]/],
    ['serve', /kiln serve <service> --nats URL/],
    ['worker', /kiln worker compile --nats URL/],
    ['status', /kiln status \[--data-dir D/],
    ['control', /kiln control <service> <stop\|start\|restart>/],
    ['catalog', /kiln catalog import --from/],
    ['receiver', /kiln receiver <identity\|open/],
    ['pair', /kiln pair <host:port>/],
  ];
  it.each(commands)('kiln %s --help prints that command\'s usage and exits 0, starting nothing', async (command, usage) => {
    const { dir, cleanup: done } = await tempDataDir();
    try {
      for (const flag of ['--help', '-h']) {
        const result = await runKiln([command, flag, '--data-dir', dir], { HOME: dir });
        expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
        expect(result.stdout).toMatch(usage);
        // Only its own usage: another command's line is not there.
        expect(result.stdout.match(/^ {2}kiln /gm)!.length).toBeLessThanOrEqual(2);
      }
      expect(existsSync(join(dir, 'run'))).toBe(false);
    } finally {
      await done();
    }
  });

  it('kiln help <command> prints that command\'s usage; kiln --help prints every command', async () => {
    expect((await runKiln(['help', 'pair'])).stdout).toMatch(/^usage:\n {2}kiln pair/);
    const all = await runKiln(['--help']);
    expect(all.code).toBe(0);
    for (const [, usage] of commands) expect(all.stdout).toMatch(usage);
  });
});

describe('kiln serve over NATS', () => {
  it('runs the log store alone and serves it on the NATS bus', async ({ skip }) => {
    const prefix = `t${process.pid}x${Date.now()}`;
    const probe = await connectNatsBus({ servers: NATS_URL, timeoutMs: 2_000, prefix }).catch((err: unknown) => {
      if (process.env.CI === 'true') throw err;
      return undefined;
    });
    if (!probe) return skip('NATS is not running (CI=true makes this a failure)');
    const kiln = host.start(['serve', 'logstore', '--nats', NATS_URL, '--set', `natsPrefix=${prefix}`, ...EPHEMERAL]);
    await kiln.healthUrl();
    const client = createLogStoreBusClient(probe);
    const job = `serve-${process.pid}-${Date.now()}`;
    await client.append(job, ['over nats']);
    await client.close(job);
    expect((await client.read(job)).lines).toEqual(['over nats']);
    expect(existsSync(join(host.dataDir, 'job-logs', `${job}.log`))).toBe(true);
    await probe.close();
    expect((await kiln.stop()).code).toBe(0);
  });
});
