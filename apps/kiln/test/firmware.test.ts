import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { natsOrSkip as connectTestNats, NATS_TEST_URL as NATS_URL, testNatsPrefix } from '@kiln/bus/testing';
import { busClient, createLogStoreBusClient, firmwarePb } from '@kiln/contracts';
import { SIM_BIN } from '@kiln/esphome-sim';
import { beforeEach, describe, expect, it } from 'vitest';
import { kilnPerTest } from './cli-harness.js';

const S = firmwarePb.JobStatus;

const host = kilnPerTest();

/** Each test gets its own namespace on the shared NATS server (other runs may be using it). */
let prefix: string;
beforeEach(() => {
  prefix = testNatsPrefix();
});

const natsOrSkip = () => connectTestNats(prefix);

async function deviceConfigDir(): Promise<string> {
  const configDir = join(host.dataDir, 'devices');
  await mkdir(configDir, { recursive: true });
  await writeFile(join(configDir, 'porch.yaml'), 'esphome:\n  name: porch\nesp32:\n  board: esp32dev\n');
  return configDir;
}

async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  for (let i = 0; i < 400; i++) {
    const v = await fn();
    if (ok(v)) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('condition never held');
}

describe('firmware service in a real host (simulator toolchain, NATS)', () => {
  // NATS subjects are shared by every host on the server, so each test's hosts are the only firmware hosts running.
  const common = (configDir: string) => ['--nats', NATS_URL, '--set', `natsPrefix=${prefix}`, '--config-dir', configDir, '--set', `firmware.toolchain=${SIM_BIN}`, '--set', 'supervisor.healthListen=127.0.0.1:0', '--set', 'gateway.listen=127.0.0.1:0'];

  it('kiln supervise hosts the lanes: an install compiles and uploads, its log is in the log store', async ({ skip }) => {
    const bus = await natsOrSkip();
    if (!bus) return skip('NATS is not running (CI=true makes this a failure)');
    const kiln = host.start(['supervise', ...common(await deviceConfigDir())]);
    await kiln.healthUrl();
    const firmware = busClient(bus, firmwarePb.FirmwareServiceDefinition);
    const { compile, upload } = await firmware.install({ configuration: 'porch.yaml', port: 'OTA' });
    const done = await until(async () => (await firmware.getJob({ jobId: upload!.id })).job!, (j) => j.status === S.JOB_STATUS_COMPLETED || j.status === S.JOB_STATUS_FAILED);
    expect(done.status).toBe(S.JOB_STATUS_COMPLETED);
    const log = await createLogStoreBusClient(bus).read(compile!.id);
    expect(log.lines.some((l) => l.includes('Successfully compiled program'))).toBe(true);
    expect(log.lines[0]).toMatch(/esphome-sim: simulated toolchain/);
    await bus.close();
  });

  it('kiln serve firmware and kiln serve logstore run apart over NATS', async ({ skip }) => {
    const bus = await natsOrSkip();
    if (!bus) return skip('NATS is not running');
    const configDir = await deviceConfigDir();
    const logstore = host.start(['serve', 'logstore', ...common(configDir)]);
    await logstore.healthUrl();
    const firmware = host.start(['serve', 'firmware', ...common(configDir)]);
    await firmware.healthUrl();
    const client = busClient(bus, firmwarePb.FirmwareServiceDefinition);
    const job = (await client.compile({ configuration: 'porch.yaml' })).job!;
    const done = await until(async () => (await client.getJob({ jobId: job.id })).job!, (j) => j.status === S.JOB_STATUS_COMPLETED);
    expect(done.progress).toBe(100);
    const output = await client.getJobOutput({ jobId: job.id });
    expect(output.lines.at(-1)).toMatch(/Successfully compiled program/);
    await bus.close();
  });

  it('with no esphome on PATH a job fails with an actionable message', async ({ skip }) => {
    const bus = await natsOrSkip();
    if (!bus) return skip('NATS is not running');
    const configDir = await deviceConfigDir();
    const kiln = host.start(['supervise', '--nats', NATS_URL, '--set', `natsPrefix=${prefix}`, '--config-dir', configDir, '--set', 'firmware.toolchain=esphome-not-installed-here', '--set', 'supervisor.healthListen=127.0.0.1:0', '--set', 'gateway.listen=127.0.0.1:0']);
    await kiln.healthUrl();
    const client = busClient(bus, firmwarePb.FirmwareServiceDefinition);
    const job = (await client.compile({ configuration: 'porch.yaml' })).job!;
    const done = await until(async () => (await client.getJob({ jobId: job.id })).job!, (j) => j.status === S.JOB_STATUS_FAILED);
    expect(done.error).toMatch(/esphome toolchain not found/);
    await bus.close();
  });
});
