import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { natsOrSkip as connectTestNats, NATS_TEST_URL as NATS_URL, testNatsPrefix } from '@kiln/bus/testing';
import { busClient, createLogStoreBusClient, firmwarePb, logStorePb } from '@kiln/contracts';
import { SIM_BIN } from '@kiln/esphome-sim';
import { GatewayClient, type Frame } from '@kiln/gateway';
import { beforeEach, describe, expect, it } from 'vitest';
import { kilnPerTest, runKiln } from './cli-harness.js';

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

  it('over NATS a 10,000-line job\'s output is published once per batch, by the log store; follow_job shows it after started and before the result', async ({ skip }) => {
    const bus = await natsOrSkip();
    if (!bus) return skip('NATS is not running (CI=true makes this a failure)');
    // Everything under this test's prefix: publishes and requests alike.
    const appends: number[] = [];
    const announced: number[] = [];
    let republished = 0;
    bus.subscribe('>', (msg) => {
      if (msg.subject === 'kiln.logstore.append') appends.push(logStorePb.AppendRequest.decode(msg.data).lines.length);
      else if (msg.subject.startsWith('kiln.logstore.lines.')) announced.push(logStorePb.LinesAppended.decode(msg.data).lines.length);
      else if (msg.subject === 'kiln.firmware.job.output') republished++;
    });
    // flushBytes 1: the log store commits each append on its own, so its announcements match the batches one to one.
    const kiln = host.start(['supervise', ...common(await deviceConfigDir()), '--set', 'logstore.flushBytes=1'], {
      ESPHOME_SIM_KNOBS_JSON: JSON.stringify({ default: { compileMs: 300, steps: 5, floodLines: 10_000, floodLineBytes: 80 } }),
    });
    await kiln.healthUrl();
    const status = JSON.parse((await runKiln(['status', '--data-dir', host.dataDir, '--json'])).stdout) as Array<{ services: Array<{ name: string; health: { detail: Record<string, string> } }> }>;
    const url = status[0]!.services.find((s) => s.name === 'gateway')!.health.detail.url!;
    const c = await GatewayClient.connect(`${url.replace('http', 'ws')}/ws`);
    try {
      const job = (await c.call('firmware/compile', { configuration: 'porch.yaml' })).result as { id: string };
      const follow = c.send('firmware/follow_job', { job_id: job.id });
      await c.next((f) => f.message_id === follow && 'result' in f, 30_000);
      const frames = c.frames.filter((f) => f.message_id === follow);
      const states = (f: Frame) => (f.event === 'job_state' ? (f.data as { status: string }).status : undefined);
      const firstOutput = frames.findIndex((f) => f.event === 'job_output');
      expect(frames.slice(0, firstOutput).map(states)).toContain('running');
      expect(frames.at(-1)).toHaveProperty('result.status', 'completed');
      const total = ((await c.call('firmware/get_job_output', { job_id: job.id })).result as { total_lines: number }).total_lines;
      const delivered = frames.filter((f) => f.event === 'job_output').reduce((n, f) => n + (f.data as { lines: string[] }).lines.length, 0);
      expect(delivered).toBe(total);
      expect(total).toBeGreaterThan(10_000);
      // Our subscription is a connection of its own: let its copies of the last messages arrive.
      await until(async () => announced.reduce((a, b) => a + b, 0), (n) => n >= total);
      expect(appends.reduce((a, b) => a + b, 0)).toBe(total);
      expect(announced).toEqual(appends);
      expect(republished).toBe(0);
    } finally {
      c.close();
      await bus.close();
    }
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
