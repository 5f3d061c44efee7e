import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { natsOrSkip as connectTestNats, NATS_TEST_URL as NATS_URL, testNatsPrefix } from '@kiln/bus/testing';
import { busClient, createLogStoreBusClient, firmwarePb } from '@kiln/contracts';
import { SIM_BIN } from '@kiln/esphome-sim';
import { processAlive } from '@kiln/toolchain';
import { beforeEach, describe, expect, it } from 'vitest';
import { kilnPerTest, records, runKiln } from './cli-harness.js';

const S = firmwarePb.JobStatus;
const host = kilnPerTest();

let prefix: string;
beforeEach(() => {
  prefix = testNatsPrefix('w');
});

const natsOrSkip = () => connectTestNats(prefix);

async function until<T>(fn: () => Promise<T> | T, ok: (v: T) => boolean, what: string): Promise<T> {
  for (let i = 0; i < 600; i++) {
    const v = await fn();
    if (ok(v)) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`never: ${what}`);
}

/** Live processes whose command line mentions `text` (a simulator's YAML path; Kiln's own argv names only the dir). */
function processesMentioning(text: string): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        return readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(text) && processAlive(Number(e));
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('kiln worker compile (split compile executor over NATS)', () => {
  it('without --nats it refuses with a clear error', async () => {
    const result = await runKiln(['worker', 'compile', '--data-dir', host.dataDir]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/kiln worker compile needs NATS: pass --nats/);
    expect((await runKiln(['worker', 'upload', '--nats', NATS_URL])).stderr).toMatch(/the only worker kind is "compile"/);
  });

  it('a worker id that is not one subject token is refused, naming the setting', async ({ skip }) => {
    const bus = await natsOrSkip();
    if (!bus) return skip('NATS is not running');
    await bus.close();
    const result = await runKiln(['worker', 'compile', '--nats', NATS_URL, '--set', `natsPrefix=${prefix}`, '--data-dir', host.dataDir, '--set', 'supervisor.healthListen=off', '--set', 'worker.id=a.b']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/worker\.id = "a\.b".*must be letters, digits/);
  });

  it('a worker killed mid-job: the job re-runs on the restarted worker, installs complete, the logs tell what happened', { timeout: 60_000 }, async ({ skip, onTestFailed }) => {
    const bus = await natsOrSkip();
    if (!bus) return skip('NATS is not running (CI=true makes this a failure)');
    const configDir = join(host.dataDir, 'devices');
    await mkdir(configDir, { recursive: true });
    for (const name of ['porch', 'garage']) await writeFile(join(configDir, `${name}.yaml`), `esphome:\n  name: ${name}\nesp32:\n  board: esp32dev\n`);
    const knobs = join(host.dataDir, 'knobs.json');
    await writeFile(knobs, JSON.stringify({ default: { compileMs: 300, uploadMs: 100, steps: 10 }, devices: { porch: { compileMs: 4_000, steps: 40 } } }));
    const common = ['--nats', NATS_URL, '--set', `natsPrefix=${prefix}`, '--config-dir', configDir, '--set', `firmware.toolchain=${SIM_BIN}`, '--set', 'supervisor.healthListen=127.0.0.1:0'];
    const env = { ESPHOME_SIM_KNOBS: knobs };
    const supervise = host.start(['supervise', '--services', 'logstore,firmware', ...common, '--set', 'firmware.compileExecutor=workers', '--set', 'firmware.workerTimeoutMs=1500'], env);
    await supervise.healthUrl();
    const worker = () => host.start(['worker', 'compile', ...common, '--set', 'worker.id=wa', '--set', 'worker.heartbeatMs=200'], env);
    const firmware = busClient(bus, firmwarePb.FirmwareServiceDefinition);
    const logs = createLogStoreBusClient(bus);
    const workers: Array<ReturnType<typeof worker>> = [];
    onTestFailed(() => console.log(`supervise:\n${supervise.output()}\n${workers.map((w, i) => `worker ${i}:\n${w.output()}`).join('\n')}`));

    const first = worker();
    workers.push(first);
    await until(() => firmware.queueStatus({}), (q) => q.compile!.slots === 1, 'the worker joined');
    const [porchCompile, porchUpload, garageCompile, garageUpload] = (await firmware.installBulk({ items: [
      { configuration: 'porch.yaml', port: 'OTA' },
      { configuration: 'garage.yaml', port: 'OTA' },
    ] })).jobs;
    await until(() => logs.read(porchCompile!.id).catch(() => ({ lines: [] as string[] })), (l) => l.lines.some((x) => x.startsWith('[')), 'porch compiling on the worker');
    first.child.kill('SIGKILL');
    await first.exited;

    // Heartbeats stop: after workerTimeoutMs the job is lost and queued again (first on its lane).
    const requeued = await until(async () => (await firmware.getJob({ jobId: porchCompile!.id })).job!, (j) => j.status === S.JOB_STATUS_QUEUED, 'porch queued again');
    expect(requeued.progress).toBe(0);
    expect((await firmware.queueStatus({})).compile).toMatchObject({ slots: 0, depth: 2 });
    // The dead worker's simulator loses its output pipe and ends.
    await until(() => processesMentioning(join(configDir, 'porch.yaml')), (p) => p.length === 0, 'no simulator left from the killed worker');

    workers.push(worker());
    for (const job of [porchCompile, porchUpload, garageCompile, garageUpload]) {
      const done = await until(async () => (await firmware.getJob({ jobId: job!.id })).job!, (j) => j.status !== S.JOB_STATUS_QUEUED && j.status !== S.JOB_STATUS_RUNNING, `${job!.id} finished`);
      expect(done.status).toBe(S.JOB_STATUS_COMPLETED);
    }
    const porchLog = (await logs.read(porchCompile!.id)).lines;
    const lost = porchLog.indexOf('... [compile worker wa sent no heartbeat for 1500 ms]');
    const rerun = porchLog.indexOf('... [running the job again (once) after its executor lost it]');
    expect(lost).toBeGreaterThan(0);
    expect(rerun).toBe(lost + 1);
    expect(porchLog[0]).toMatch(/esphome-sim: simulated toolchain/);
    expect(porchLog[rerun + 1]).toMatch(/esphome-sim: simulated toolchain/);
    expect(porchLog.at(-1)).toMatch(/Successfully compiled program/);
    // Output through a worker looks like a local compile's: same lines, progress to 100.
    expect((await logs.read(garageCompile!.id)).lines.at(-1)).toMatch(/Successfully compiled program/);
    expect((await firmware.getJob({ jobId: garageCompile!.id })).job!.progress).toBe(100);
    expect(records(supervise.output()).some((r) => r.msg === 'compile worker lost' && r.workerId === 'wa')).toBe(true);
    await bus.close();
  });
});
