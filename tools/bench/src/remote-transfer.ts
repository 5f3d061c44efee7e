// Remote builds on loopback, two figures side by side with their baselines in one run:
// 1. artifact transfer: a real receiver (gRPC, pinned TLS both ways) serving a simulator-built
//    firmware image to a paired offloader, next to the same bytes over a bare TLS socket (the floor:
//    no gRPC framing, chunking, hashing or checks);
// 2. makespan of 6 installs through an offloader's firmware service (compile on receivers, flash on
//    the local upload lane) with 1 vs 2 receivers, and with none (all local) as the baseline.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInProcessBus } from '@kiln/bus';
import { loadConfig } from '@kiln/config';
import { firmwarePb, remotePb as pb, type ServiceDeps } from '@kiln/contracts';
import { createFirmwareService } from '@kiln/firmware';
import { createLogStoreService } from '@kiln/logstore';
import { createReceiverClient, previewReceiver } from '@kiln/contracts/grpc';
import { SIM_BIN } from '@kiln/esphome-sim';
import { createRootLogger } from '@kiln/logging';
import { createReceiverService } from '@kiln/receiver';
import { loadOrCreateIdentity, packBundle, ReceiverPairings } from '@kiln/remote-identity';
import { Toolchain } from '@kiln/toolchain';
import { resolveBuildPaths } from '@kiln/core';
import { table } from './proc.js';

const FIRMWARE_BYTES = Number(process.env.BENCH_FIRMWARE_BYTES ?? 16 * 1024 * 1024);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const INSTALLS = Number(process.env.BENCH_INSTALLS ?? 6);
const COMPILE_MS = Number(process.env.BENCH_COMPILE_MS ?? 2_000);
const UPLOAD_MS = Number(process.env.BENCH_UPLOAD_MS ?? 200);

export async function remoteTransfer(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'kiln-bench-remote-'));
  try {
    const keyFile = join(root, 'pairing.key');
    const key = randomBytes(16).toString('hex');
    await writeFile(keyFile, key, { mode: 0o600 });
    const config = await loadConfig({
      env: { HOME: root },
      flags: [
        { path: 'dataDir', value: join(root, 'data'), flag: '--data-dir' },
        { path: 'configDir', value: join(root, 'config'), flag: '--config-dir' },
        { path: 'receiver.grpcListen', value: '127.0.0.1:0', flag: '--set' },
        { path: 'receiver.pairingKeyFile', value: keyFile, flag: '--set' },
        { path: 'receiver.maxArtifactBytes', value: String(8 * FIRMWARE_BYTES), flag: '--set' },
      ],
    });
    const knobs = JSON.stringify({ default: { compileMs: 50, steps: 2, firmwareBytes: FIRMWARE_BYTES } });
    const toolchain = new Toolchain({ command: [SIM_BIN], env: { ESPHOME_SIM_KNOBS_JSON: knobs } });
    const logger = await createRootLogger({ level: 'silent', pretty: false });
    const service = createReceiverService({ name: 'receiver', bus: createInProcessBus(), config, logger, fail: (e) => { throw e; } }, { toolchain });
    await service.start();
    const address = service.grpcAddress!;
    const offloader = await loadOrCreateIdentity(join(root, 'offloader'), 'bench');
    const { pin } = await previewReceiver(address, offloader);
    const client = createReceiverClient({ address, identity: offloader, pin, maxArtifactBytes: 8 * FIRMWARE_BYTES });
    await client.requestPair({ pairingKey: key });
    const yaml = 'esphome:\n  name: bench\nesp32:\n  board: esp32dev\n';
    const { sha256 } = await client.submitBundle(await packBundle([{ name: 'bench.yaml', data: yaml }]));
    const build = await client.startBuild({ bundleSha256: sha256, configuration: 'bench.yaml', action: pb.BuildAction.BUILD_ACTION_COMPILE });
    for await (const event of client.follow(build.buildId)) {
      if (event.$case === 'state' && event.value.status === pb.BuildStatus.BUILD_STATUS_FAILED) throw new Error(`bench build failed: ${event.value.error}`);
    }
    const paths = resolveBuildPaths(join(root, 'config'), 'bench.yaml', { dashboardId: offloader.dashboardId });
    const files = ['firmware.bin', 'firmware.factory.bin', 'firmware.ota.bin', 'bootloader.bin', 'partitions.bin'];
    const images = await Promise.all(files.map((f) => readFile(join(paths.firmwareDir('bench'), f)).catch(() => Buffer.alloc(0))));
    const total = images.reduce((n, b) => n + b.length, 0);

    const grpcSeconds: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const start = process.hrtime.bigint();
      const got = await client.downloadArtifacts(build.buildId);
      grpcSeconds.push(Number(process.hrtime.bigint() - start) / 1e9);
      // The images, beside the small flash layout and platformio.ini that travel with them.
      if (got.filter((a) => a.name.endsWith('.bin')).reduce((n, a) => n + a.data.length, 0) !== total) throw new Error('downloaded size differs from the images on disk');
    }
    const tlsSeconds = await bareTls(images, ROUNDS, service.receiver.identity);
    client.close();
    await service.stop();

    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const mbps = (s: number) => total / 1024 / 1024 / s;
    const g = median(grpcSeconds);
    const t = median(tlsSeconds);
    console.log(`artifact transfer on loopback: ${(total / 1024 / 1024).toFixed(1)} MiB of images, median of ${ROUNDS} rounds`);
    console.log(
      table([
        ['path', 'seconds', 'MB/s', 'vs bare TLS'],
        ['bare TLS socket (floor)', t.toFixed(3), mbps(t).toFixed(1), '1.00'],
        ['receiver DownloadArtifacts (gRPC, pinned mTLS, sha256 both ends)', g.toFixed(3), mbps(g).toFixed(1), (mbps(g) / mbps(t)).toFixed(2)],
      ]),
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** The same bytes over one TLS connection per round, read to the end by the client. */
async function bareTls(images: Buffer[], rounds: number, identity: { keyPem: string; certPem: string }): Promise<number[]> {
  const server = createServer({ key: identity.keyPem, cert: identity.certPem }, (socket) => {
    for (const image of images) socket.write(image);
    socket.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const seconds: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const start = process.hrtime.bigint();
    await new Promise<void>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
      socket.on('data', () => undefined);
      socket.on('end', resolve);
      socket.on('error', reject);
    });
    seconds.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  server.close();
  return seconds;
}

/**
 * Makespan of INSTALLS installs (install_bulk, OTA) through an offloader's firmware service with
 * `receivers` paired receivers (0: everything compiles locally). Simulator durations: every compile
 * takes COMPILE_MS wherever it runs, every upload UPLOAD_MS on the local upload lane.
 */
async function installMakespan(receivers: number): Promise<number> {
  const root = await mkdtemp(join(tmpdir(), 'kiln-bench-offload-'));
  const stops: Array<() => Promise<void>> = [];
  try {
    const knobs = JSON.stringify({ default: { compileMs: COMPILE_MS, uploadMs: UPLOAD_MS, steps: 10 } });
    const logger = await createRootLogger({ level: 'silent', pretty: false });
    const dataDir = join(root, 'offloader-data');
    const offloaderDir = join(dataDir, 'offloader');
    const identity = await loadOrCreateIdentity(join(offloaderDir, 'identity'), 'bench');
    for (let i = 0; i < receivers; i++) {
      const dir = join(root, `receiver-${i}`);
      await mkdir(dir, { recursive: true });
      const keyFile = join(dir, 'pairing.key');
      const key = randomBytes(16).toString('hex');
      await writeFile(keyFile, key, { mode: 0o600 });
      const config = await loadConfig({
        env: { HOME: dir },
        flags: [
          { path: 'dataDir', value: join(dir, 'data'), flag: '--data-dir' },
          { path: 'configDir', value: join(dir, 'config'), flag: '--config-dir' },
          { path: 'receiver.grpcListen', value: '127.0.0.1:0', flag: '--set' },
          { path: 'receiver.pairingKeyFile', value: keyFile, flag: '--set' },
        ],
      });
      const toolchain = new Toolchain({ command: [SIM_BIN], env: { ESPHOME_SIM_KNOBS_JSON: knobs } });
      const receiver = createReceiverService({ name: 'receiver', bus: createInProcessBus(), config, logger, fail: (e) => { throw e; } }, { toolchain });
      await receiver.start();
      stops.push(() => receiver.stop());
      const address = receiver.grpcAddress!;
      const preview = await previewReceiver(address, identity);
      const client = createReceiverClient({ address, identity, pin: preview.pin });
      await client.requestPair({ pairingKey: key });
      client.close();
      await new ReceiverPairings(offloaderDir).save({ dashboardId: preview.identity.dashboardId, name: `receiver-${i}`, address, pin: preview.pin, enabled: true, pairedAtMs: Date.now() });
    }
    const configDir = join(root, 'offloader-config');
    await mkdir(configDir, { recursive: true });
    const devices = Array.from({ length: INSTALLS }, (_, i) => `device-${i}`);
    for (const d of devices) await writeFile(join(configDir, `${d}.yaml`), `esphome:\n  name: ${d}\nesp32:\n  board: esp32dev\n`);
    process.env['ESPHOME_SIM_KNOBS_JSON'] = knobs;
    const config = await loadConfig({
      env: { HOME: root },
      flags: [
        { path: 'dataDir', value: dataDir, flag: '--data-dir' },
        { path: 'configDir', value: configDir, flag: '--config-dir' },
        { path: 'firmware.toolchain', value: SIM_BIN, flag: '--set' },
      ],
    });
    const bus = createInProcessBus();
    const deps = (name: string): ServiceDeps => ({ name, bus, config, logger, fail: (e) => { throw e; } });
    const logstore = createLogStoreService(deps('logstore'));
    const firmware = createFirmwareService(deps('firmware'));
    await logstore.start();
    await firmware.start();
    stops.push(() => logstore.stop(), () => firmware.stop());
    // Wait until every receiver's status stream is up (the compile lane counts it).
    for (let i = 0; receivers > 0 && firmware.health().detail?.['eligibleReceivers'] !== String(receivers); i++) {
      if (i > 400) throw new Error(`receivers never became eligible: ${JSON.stringify(firmware.health().detail)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    const start = process.hrtime.bigint();
    const jobs = (await firmware.core.installBulk({ items: devices.map((d) => ({ configuration: `${d}.yaml`, port: 'OTA' })) })).jobs;
    const uploads = new Set(jobs.filter((j) => j.type === firmwarePb.JobType.JOB_TYPE_UPLOAD).map((j) => j.id));
    for (;;) {
      const done = (await firmware.core.getJobs()).jobs.filter((j) => uploads.has(j.id) && j.finishedAtMs > 0);
      if (done.length === uploads.size) {
        const failed = done.find((j) => j.status !== firmwarePb.JobStatus.JOB_STATUS_COMPLETED);
        if (failed) throw new Error(`install of ${failed.configuration} ended ${failed.status}: ${failed.error}`);
        break;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    return Number(process.hrtime.bigint() - start) / 1e9;
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  }
}

export async function remoteMakespan(): Promise<void> {
  const rows: Array<[string, number]> = [];
  for (const receivers of [0, 1, 2]) rows.push([receivers === 0 ? 'no receiver (all local, baseline)' : `${receivers} receiver${receivers > 1 ? 's' : ''}`, await installMakespan(receivers)]);
  const oneReceiver = rows[1]![1];
  console.log(`makespan of ${INSTALLS} installs through the offloader (simulated compile ${COMPILE_MS} ms, upload ${UPLOAD_MS} ms each)`);
  console.log(
    table([
      ['compile lane', 'makespan s', 'vs 1 receiver'],
      ...rows.map(([name, seconds]) => [name, seconds.toFixed(2), (oneReceiver / seconds).toFixed(2)]),
    ]),
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await remoteTransfer();
  await remoteMakespan();
}
