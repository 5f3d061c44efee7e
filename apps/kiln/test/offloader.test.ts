import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { natsOrSkip as connectTestNats, NATS_TEST_URL as NATS_URL, testNatsPrefix } from '@kiln/bus/testing';
import type { Bus } from '@kiln/bus';
import { busClient, createLogStoreBusClient, firmwarePb, remotePb, type BusClient } from '@kiln/contracts';
import { SIM_BIN } from '@kiln/esphome-sim';
import { loadOrCreateIdentity } from '@kiln/remote-identity';
import { processAlive } from '@kiln/toolchain';
import { resolveBuildPaths } from '@kiln/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EPHEMERAL, runKiln, startKiln, tempDataDir, type Running } from './cli-harness.js';
import { deviceYaml, startReceiverProcess, type Cleanups, type ReceiverProcess } from './remote-harness.js';

const S = firmwarePb.JobStatus;
const cleanups: Cleanups = [];
let prefix: string;
beforeEach(() => {
  prefix = testNatsPrefix();
});
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

interface Offloader {
  kiln: Running;
  healthUrl: string;
  dir: string;
  configDir: string;
  bus: Bus;
  firmware: BusClient<firmwarePb.FirmwareServiceDefinition>;
  bus: Bus;
  log(jobId: string): Promise<string[]>;
  /** Start `kiln supervise` again on the same dirs (after it died). */
  restart(): Promise<Running>;
}

async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, what: string): Promise<T> {
  for (let i = 0; i < 1200; i++) {
    const v = await fn();
    if (ok(v)) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`never happened: ${what}`);
}

/** `kiln pair` each receiver (headless, one-shot key), then `kiln supervise` as the offloader over NATS. */
async function startOffloader(receivers: ReceiverProcess[], devices: string[]): Promise<Offloader | undefined> {
  const bus = await connectTestNats(prefix);
  if (!bus) return undefined;
  cleanups.push(() => bus.close());
  const { dir, cleanup } = await tempDataDir();
  cleanups.push(cleanup);
  const configDir = join(dir, 'config');
  await mkdir(configDir, { recursive: true });
  for (const d of devices) await writeFile(join(configDir, `${d}.yaml`), deviceYaml(d));
  for (const r of receivers) await pair(r, dir);
  const start = (): Running => {
    const kiln = startKiln(['supervise', '--nats', NATS_URL, '--set', `natsPrefix=${prefix}`, '--config-dir', configDir, '--set', `firmware.toolchain=${SIM_BIN}`, ...EPHEMERAL], dir, {
      ESPHOME_SIM_KNOBS_JSON: JSON.stringify({ default: { uploadMs: 50 } }),
    });
    cleanups.push(() => kiln.stop());
    return kiln;
  };
  const kiln = start();
  const healthUrl = await kiln.healthUrl();
  if (receivers.length > 0) await eligible(healthUrl, receivers.length);
  const logs = createLogStoreBusClient(bus);
  return {
    kiln,
    healthUrl,
    dir,
    configDir,
    bus,
    firmware: busClient(bus, firmwarePb.FirmwareServiceDefinition),
    log: async (id) => (await logs.read(id)).lines,
    async restart() {
      const again = start();
      if (receivers.length > 0) await eligible(await again.healthUrl(), receivers.length);
      return again;
    },
  };
}

/** `kiln pair` with the offloader's data dir (headless: the receiver's one-shot key). */
async function pair(receiver: ReceiverProcess, dataDir: string): Promise<void> {
  const paired = await runKiln(['pair', receiver.address, '--yes', '--pairing-key-file', receiver.keyFile, '--data-dir', dataDir], { HOME: dataDir });
  expect(paired.code, paired.stdout + paired.stderr).toBe(0);
}

/** The compile lane counts a receiver once its status stream is up. */
async function eligible(healthUrl: string, count: number): Promise<void> {
  await until(
    async () => ((await (await fetch(`${healthUrl}/health`)).json()) as { services: Array<{ name: string; health?: { detail?: Record<string, string> } }> }).services.find((s) => s.name === 'firmware')?.health?.detail,
    (d) => d?.eligibleReceivers === String(count),
    `${count} receiver(s) eligible`,
  );
}

const finished = (j: firmwarePb.Job): boolean => j.status === S.JOB_STATUS_COMPLETED || j.status === S.JOB_STATUS_FAILED || j.status === S.JOB_STATUS_CANCELLED;

/** Which receiver (by address) the log says the compile ran on last. */
function ranOn(lines: string[], receivers: ReceiverProcess[]): ReceiverProcess | undefined {
  const line = lines.filter((l) => l.startsWith('... [compiling on receiver')).at(-1) ?? '';
  return receivers.find((r) => line.includes(`(${r.address})`));
}

// Three kiln processes and their simulator children per test, on a machine shared with other runs.
const SLOW = 90_000;

describe('offloader: kiln supervise sends compiles to two kiln receiver processes (real gRPC, NATS)', () => {
  it('four installs compile in parallel across both receivers; the images land byte for byte where the local upload flashes them (OTA and serial)', async ({ skip }) => {
    const receivers = await Promise.all([startReceiverProcess(cleanups, { default: { compileMs: 1500, steps: 10 } }), startReceiverProcess(cleanups, { default: { compileMs: 1500, steps: 10 } })]);
    const devices = ['a1', 'a2', 'b1', 'b2'];
    const off = await startOffloader(receivers, devices);
    if (!off) return skip('NATS is not running (CI=true makes this a failure)');
    // b2 is flashed over serial: esptool needs the flash layout (idedata), which travels with the images.
    const portOf = (configuration: string): string => (configuration === 'b2.yaml' ? '/dev/ttyUSB0' : 'OTA');
    const chains = (await off.firmware.installBulk({ items: devices.map((d) => ({ configuration: `${d}.yaml`, port: portOf(`${d}.yaml`) })) })).jobs;
    const uploads = chains.filter((j) => j.type === firmwarePb.JobType.JOB_TYPE_UPLOAD);
    const compiles = chains.filter((j) => j.type === firmwarePb.JobType.JOB_TYPE_COMPILE);
    for (const u of uploads) expect((await until(async () => (await off.firmware.getJob({ jobId: u.id })).job!, finished, `upload ${u.configuration}`)).status).toBe(S.JOB_STATUS_COMPLETED);

    const identity = await loadOrCreateIdentity(join(off.dir, 'offloader', 'identity'), 'unused');
    const done = await Promise.all(compiles.map(async (c) => (await off.firmware.getJob({ jobId: c.id })).job!));
    const where = new Map<string, ReceiverProcess>();
    for (const job of done) {
      expect(job.status).toBe(S.JOB_STATUS_COMPLETED);
      const lines = await off.log(job.id);
      const receiver = ranOn(lines, receivers);
      expect(receiver, lines.join('\n')).toBeDefined();
      where.set(job.id, receiver!);
      const device = job.configuration.replace('.yaml', '');
      const local = resolveBuildPaths(off.configDir, job.configuration).firmwareDir(device);
      const remote = resolveBuildPaths(receiver!.configDir, job.configuration, { dashboardId: identity.dashboardId }).firmwareDir(device);
      const images = (await readdir(remote)).filter((n) => n.endsWith('.bin')).sort();
      expect(images.length).toBeGreaterThanOrEqual(3);
      expect((await readdir(local)).filter((n) => n.endsWith('.bin')).sort()).toEqual(images);
      for (const image of images) expect((await readFile(join(local, image))).equals(await readFile(join(remote, image)))).toBe(true);
      expect((await off.firmware.getBinaries({ configuration: job.configuration })).artifacts.map((a) => a.file).sort()).toEqual(images);
    }
    // Both receivers were used, and at the same time: two compiles on different receivers overlapped.
    expect(new Set(where.values()).size).toBe(2);
    const overlapped = done.some((a) => done.some((b) => where.get(a.id) !== where.get(b.id) && a.startedAtMs < b.finishedAtMs && b.startedAtMs < a.finishedAtMs));
    expect(overlapped).toBe(true);
    // The local upload lane flashed the materialised image; the serial one also the images of the local idedata.
    for (const u of uploads) {
      const log = (await off.log(u.id)).join('\n');
      const device = u.configuration.replace('.yaml', '');
      const local = resolveBuildPaths(off.configDir, u.configuration);
      if (portOf(u.configuration) === 'OTA') {
        expect(log).toContain(`Uploading ${local.firmwareBin(device)}`);
        expect(log).toContain('OTA successful');
        continue;
      }
      const ideData = JSON.parse(await readFile(local.idedata(device), 'utf8')) as { prog_path: string; extra: { flash_images: { path: string; offset: string }[] } };
      expect(ideData.prog_path).toBe(join(local.firmwareDir(device), 'firmware.elf'));
      expect(ideData.extra.flash_images).toEqual([
        { path: join(local.firmwareDir(device), 'bootloader.bin'), offset: '0x1000' },
        { path: join(local.firmwareDir(device), 'partitions.bin'), offset: '0x8000' },
      ]);
      // esphome reuses that idedata only under an older platformio.ini (else it re-runs PlatformIO, which has no project here).
      expect((await stat(local.platformioIni(device))).mtimeMs).toBeLessThan((await stat(local.idedata(device))).mtimeMs);
      expect(log).not.toContain('Could not match idedata');
      expect(log).toContain('Serial port /dev/ttyUSB0');
      expect(log).toMatch(/Wrote \d+ bytes at 0x00001000/);
      expect(log).toMatch(/Wrote \d+ bytes at 0x00008000/);
      expect(log).toContain('Successfully uploaded program.');
    }
  }, SLOW);

  it('the bundle carries what the YAML includes (substituted references too); an unchanged configuration is not sent again; a cancel kills the compile inside the receiver process', async ({ skip }) => {
    const receiver = await startReceiverProcess(cleanups, { default: { compileMs: 200, steps: 4 }, devices: { stuck: { hang: 'compile', spawnChild: true } } });
    const off = await startOffloader([receiver], ['porch', 'stuck']);
    if (!off) return skip('NATS is not running (CI=true makes this a failure)');
    const fonts = 'font:\n  - file: ${font_dir}/Roboto.ttf\n    id: f\n  - file: ${nope}/x.ttf\n    id: n\n';
    await writeFile(join(off.configDir, 'porch.yaml'), `${deviceYaml('porch')}substitutions:\n  font_dir: fonts\npackages:\n  base: !include common/base.yaml\n${fonts}`);
    await mkdir(join(off.configDir, 'common'));
    await mkdir(join(off.configDir, 'fonts'));
    await writeFile(join(off.configDir, 'common', 'base.yaml'), 'logger:\n');
    await writeFile(join(off.configDir, 'fonts', 'Roboto.ttf'), 'font bytes');
    const first = (await off.firmware.compile({ configuration: 'porch.yaml' })).job!;
    expect((await until(async () => (await off.firmware.getJob({ jobId: first.id })).job!, finished, 'first compile')).status).toBe(S.JOB_STATUS_COMPLETED);
    const firstLog = (await off.log(first.id)).join('\n');
    expect(firstLog).toMatch(/config bundle [0-9a-f]{12}: sent/);
    // A reference whose substitution does not resolve is not sent, and the job's log says so.
    expect(firstLog).toContain(`... [warning: porch.yaml: "\${nope}/x.ttf" not sent to the receiver: substitution 'nope' is not defined]`);
    const identity = await loadOrCreateIdentity(join(off.dir, 'offloader', 'identity'), 'unused');
    const sources = resolveBuildPaths(receiver.configDir, 'porch.yaml', { dashboardId: identity.dashboardId }).sourceDir;
    expect(await readFile(join(sources, 'common', 'base.yaml'), 'utf8')).toBe('logger:\n');
    expect(await readFile(join(sources, 'fonts', 'Roboto.ttf'), 'utf8')).toBe('font bytes');
    const second = (await off.firmware.compile({ configuration: 'porch.yaml' })).job!;
    expect((await until(async () => (await off.firmware.getJob({ jobId: second.id })).job!, finished, 'second compile')).status).toBe(S.JOB_STATUS_COMPLETED);
    expect((await off.log(second.id)).join('\n')).toMatch(/config bundle [0-9a-f]{12}: unchanged, already on the receiver/);

    const { compile, upload } = await off.firmware.install({ configuration: 'stuck.yaml', port: 'OTA' });
    const pidFile = join(resolveBuildPaths(receiver.configDir, 'stuck.yaml', { dashboardId: identity.dashboardId }).dataDir, 'sim-child.pid');
    const pid = await until(async () => Number(await readFile(pidFile, 'utf8').catch(() => '')) || 0, (p) => p > 0, 'the receiver compile spawned its child');
    expect(processAlive(pid)).toBe(true);
    await off.firmware.cancel({ jobId: compile!.id });
    expect((await until(async () => (await off.firmware.getJob({ jobId: compile!.id })).job!, finished, 'cancelled compile')).status).toBe(S.JOB_STATUS_CANCELLED);
    expect((await off.firmware.getJob({ jobId: upload!.id })).job!.status).toBe(S.JOB_STATUS_CANCELLED);
    await until(async () => processAlive(pid), (alive) => !alive, 'the compile tree inside the receiver is gone');
  }, SLOW);

  it('a receiver killed mid-build: the compile is retried on the other one and flashed', async ({ skip }) => {
    const doomed = await startReceiverProcess(cleanups, { default: { compileMs: 10_000, steps: 50 } });
    const healthy = await startReceiverProcess(cleanups);
    const off = await startOffloader([doomed, healthy], ['porch']);
    if (!off) return skip('NATS is not running (CI=true makes this a failure)');
    const { compile, upload } = await off.firmware.install({ configuration: 'porch.yaml', port: 'OTA' });
    // Both are idle: the first paired one gets it.
    await until(() => off.firmware.getJobOutput({ jobId: compile!.id }), (o) => o.lines.some((l) => l.includes(`(${doomed.address})`)) && o.lines.some((l) => l.startsWith('[')), 'compile running on the doomed receiver');
    doomed.kiln.child.kill('SIGKILL');
    expect((await until(async () => (await off.firmware.getJob({ jobId: upload!.id })).job!, finished, 'upload after the retry')).status).toBe(S.JOB_STATUS_COMPLETED);
    const lines = await off.log(compile!.id);
    expect(lines.join('\n')).toMatch(/lost the build .*retrying elsewhere \(1\/2\)/);
    expect(ranOn(lines, [doomed, healthy])).toBe(healthy);
    expect((await off.firmware.getJob({ jobId: compile!.id })).job!.status).toBe(S.JOB_STATUS_COMPLETED);
  }, SLOW);

  it('the offloader killed mid remote build: started again, it runs the compile again on the receiver (which drops the orphaned build) and flashes it', async ({ skip }) => {
    // The first compile never ends by itself (the simulator reads this file at each run): only a cancel stops it.
    const { dir: knobsDir, cleanup } = await tempDataDir();
    cleanups.push(cleanup);
    const knobs = join(knobsDir, 'knobs.json');
    await writeFile(knobs, JSON.stringify({ default: { hang: 'compile', spawnChild: true } }));
    const receiver = await startReceiverProcess(cleanups, knobs);
    const off = await startOffloader([receiver], ['porch']);
    if (!off) return skip('NATS is not running (CI=true makes this a failure)');
    const identity = await loadOrCreateIdentity(join(off.dir, 'offloader', 'identity'), 'unused');
    const pidFile = join(resolveBuildPaths(receiver.configDir, 'porch.yaml', { dashboardId: identity.dashboardId }).dataDir, 'sim-child.pid');
    const { compile, upload } = await off.firmware.install({ configuration: 'porch.yaml', port: 'OTA' });
    const orphan = await until(async () => Number(await readFile(pidFile, 'utf8').catch(() => '')) || 0, (p) => p > 0, 'the receiver compile spawned its child');
    await until(() => off.firmware.getJobOutput({ jobId: compile!.id }), (o) => o.lines.some((l) => l.startsWith('INFO Compiling app')), 'compile output from the receiver');
    off.kiln.child.kill('SIGKILL');
    await off.kiln.exited;
    await writeFile(knobs, JSON.stringify({ default: { compileMs: 300, steps: 5 } }));
    // The receiver keeps compiling for an offloader that is gone, until that offloader asks again.
    expect(processAlive(orphan)).toBe(true);

    await off.restart();
    // The re-run replaces the orphaned build of the same (offloader, device): its process tree is killed.
    await until(async () => processAlive(orphan), (alive) => !alive, 'the orphaned compile inside the receiver is gone');
    expect((await until(async () => (await off.firmware.getJob({ jobId: upload!.id })).job!, finished, 'upload after the re-run')).status).toBe(S.JOB_STATUS_COMPLETED);
    expect((await off.firmware.getJob({ jobId: compile!.id })).job!.status).toBe(S.JOB_STATUS_COMPLETED);
    const lines = await off.log(compile!.id);
    expect(lines).toContain('... [kiln restarted while this job was running; running it again]');
    // Compiled on the receiver both times (before and after the restart), never on this host.
    expect(lines.filter((l) => l.startsWith('... [compiling on receiver') && l.includes(`(${receiver.address})`))).toHaveLength(2);
    expect(lines).not.toContain('... [compiling on this host]');
    expect((await off.log(upload!.id)).join('\n')).toContain('OTA successful');
    const device = resolveBuildPaths(off.configDir, 'porch.yaml');
    const remote = resolveBuildPaths(receiver.configDir, 'porch.yaml', { dashboardId: identity.dashboardId });
    expect((await readFile(device.firmwareBin('porch'))).equals(await readFile(remote.firmwareBin('porch')))).toBe(true);
  }, SLOW);

  it('a running host follows kiln pair: the receiver joins its compile lane without a restart', async ({ skip }) => {
    const receiver = await startReceiverProcess(cleanups);
    const off = await startOffloader([], ['porch']);
    if (!off) return skip('NATS is not running (CI=true makes this a failure)');
    await pair(receiver, off.dir);
    await eligible(off.healthUrl, 1);
    const job = (await off.firmware.compile({ configuration: 'porch.yaml' })).job!;
    expect((await until(async () => (await off.firmware.getJob({ jobId: job.id })).job!, finished, 'compile')).status).toBe(S.JOB_STATUS_COMPLETED);
    expect(ranOn(await off.log(job.id), [receiver])).toBe(receiver);
  }, SLOW);

  it('a receiver that moved to a new port: edit_pairing_endpoint rebinds the pairing (same pin only) and the next compile runs there', async ({ skip }) => {
    const moving = await startReceiverProcess(cleanups);
    const off = await startOffloader([moving], ['porch']);
    if (!off) return skip('NATS is not running (CI=true makes this a failure)');
    const receiversFile = join(off.dir, 'offloader', 'receivers.json');
    const stored = async () => JSON.parse(await readFile(receiversFile, 'utf8')) as Array<{ address: string; pin: string }>;
    const [before] = await stored();
    const pin = before!.pin;
    const oldAddress = moving.address;
    expect(before!.address).toBe(oldAddress);

    // Same data dir (same identity), another port: the offloader loses it.
    await moving.kiln.stop();
    await eligible(off.healthUrl, 0);
    await moving.restart();
    expect(moving.address).not.toBe(oldAddress);
    const split = (address: string) => ({ hostname: address.slice(0, address.lastIndexOf(':')), port: Number(address.slice(address.lastIndexOf(':') + 1)) });

    // Another receiver (another pin) at the address given: refused, naming both pins; the row is unchanged.
    const stranger = await startReceiverProcess(cleanups);
    const refused = await busClient(off.bus, remotePb.OffloaderServiceDefinition).editPairingEndpoint({ pinSha256: pin, ...split(stranger.address) }, { timeoutMs: 20_000 }).catch((err: unknown) => err);
    expect(refused).toMatchObject({ code: 'permission_denied', details: { value: pin, address: stranger.address } });
    const strangerPin = (refused as { details: { presented: string } }).details.presented;
    expect(strangerPin).not.toBe(pin);
    expect((refused as Error).message).toContain(strangerPin);
    expect((refused as Error).message).toContain(pin);
    expect(await stored()).toEqual([expect.objectContaining({ pin, address: oldAddress })]);

    // The moved receiver presents the paired pin: rebound, persisted, reconnected.
    const { pairing } = await busClient(off.bus, remotePb.OffloaderServiceDefinition).editPairingEndpoint({ pinSha256: pin, ...split(moving.address) }, { timeoutMs: 20_000 });
    expect(pairing).toMatchObject({ pinSha256: pin, ...split(moving.address), enabled: true });
    expect(await stored()).toEqual([expect.objectContaining({ pin, address: moving.address })]);
    await eligible(off.healthUrl, 1);
    const job = (await off.firmware.compile({ configuration: 'porch.yaml' })).job!;
    expect((await until(async () => (await off.firmware.getJob({ jobId: job.id })).job!, finished, 'compile after the move')).status).toBe(S.JOB_STATUS_COMPLETED);
    expect(ranOn(await off.log(job.id), [moving])).toBe(moving);
  }, SLOW);
});

describe('offloader: a build sent to one receiver (remote_build/submit_job over the bus)', () => {
  it('runs on B although A is idle (and first in line); B killed mid-build fails the job naming B, not retried on A nor built here', async ({ skip }) => {
    const a = await startReceiverProcess(cleanups);
    const b = await startReceiverProcess(cleanups, { default: { compileMs: 10_000, steps: 50 } });
    const off = await startOffloader([a, b], ['porch']);
    if (!off) return skip('NATS is not running (CI=true makes this a failure)');
    const rows = JSON.parse(await readFile(join(off.dir, 'offloader', 'receivers.json'), 'utf8')) as Array<{ address: string; pin: string }>;
    const pinB = rows.find((r) => r.address === b.address)!.pin;
    const { compile } = await busClient(off.bus, firmwarePb.RemoteJobServiceDefinition).submitJob({ pinSha256: pinB, configuration: 'porch.yaml', target: '', port: '' });
    expect(compile!.receiverPin).toBe(pinB);
    await until(() => off.firmware.getJobOutput({ jobId: compile!.id }), (o) => o.lines.some((l) => l.includes(`(${b.address})`)) && o.lines.some((l) => l.startsWith('[')), 'compile running on B');
    b.kiln.child.kill('SIGKILL');
    const failed = await until(async () => (await off.firmware.getJob({ jobId: compile!.id })).job!, finished, 'the compile ends');
    expect(failed.status).toBe(S.JOB_STATUS_FAILED);
    expect(failed.error).toContain(`(${b.address}) lost the build`);
    expect(failed.error).toContain('not retried elsewhere');
    const lines = await off.log(compile!.id);
    expect(ranOn(lines, [a, b])).toBe(b);
    expect(lines.some((l) => l.includes(`(${a.address})`) || l.includes('compiling on this host'))).toBe(false);
  }, SLOW);
});
