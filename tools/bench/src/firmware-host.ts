// An in-process firmware host for benchmarks: log store + lanes on the in-process bus, simulator toolchain.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInProcessBus, type Bus } from '@kiln/bus';
import { loadConfig, v } from '@kiln/config';
import { createLogStoreBusClient, firmwarePb as pb, firmwareSubjects } from '@kiln/contracts';
import { deferred, systemClock, type Deferred } from '@kiln/core';
import { SIM_BIN } from '@kiln/esphome-sim';
import { FirmwareCore, firmwareSettingsSchema } from '@kiln/firmware';
import { Toolchain } from '@kiln/toolchain';

import { createRootLogger } from '@kiln/logging';
import { createLogStoreService, type LogStoreService } from '@kiln/logstore';

export interface BenchHost {
  core: FirmwareCore;
  bus: Bus;
  configDir: string;
  logstore: LogStoreService;
  /** Resolves with the job when it reaches one of the terminal statuses. */
  finished(jobId: string): Promise<pb.Job>;
  close(): Promise<void>;
}

export async function startBenchHost(devices: string[], knobs: object, settings: Record<string, unknown> = {}): Promise<BenchHost> {
  const root = await mkdtemp(join(tmpdir(), 'kiln-bench-fw-'));
  const configDir = join(root, 'config');
  await mkdir(configDir, { recursive: true });
  for (const d of devices) await writeFile(join(configDir, `${d}.yaml`), `esphome:\n  name: ${d}\nesp32:\n  board: esp32dev\n`);
  const knobsFile = join(root, 'knobs.json');
  await writeFile(knobsFile, JSON.stringify(knobs));
  const bus = createInProcessBus();
  const logger = await createRootLogger({ level: 'silent', pretty: false });
  const config = await loadConfig({ env: { HOME: '/nonexistent' }, flags: [{ path: 'dataDir', value: join(root, 'data'), flag: '--data-dir' }] });
  const logstore = createLogStoreService({ name: 'logstore', bus, config, logger, fail: () => undefined });
  await logstore.start();
  const parsed = v.parse(firmwareSettingsSchema, settings);
  const toolchain = new Toolchain({ command: [SIM_BIN], killGraceMs: parsed.killGraceMs, env: { ESPHOME_SIM_KNOBS: knobsFile } });
  const core = new FirmwareCore({ dataDir: join(root, 'data'), configDir, settings: parsed, toolchain, logs: createLogStoreBusClient(bus), bus, logger, clock: systemClock });
  await core.restore();
  const waiting = new Map<string, Deferred<pb.Job>>();
  for (const event of ['completed', 'failed', 'cancelled'] as const) {
    const codec = event === 'completed' ? pb.JobCompleted : event === 'failed' ? pb.JobFailed : pb.JobCancelled;
    bus.subscribe(firmwareSubjects.event(event), (msg) => {
      const job = codec.decode(msg.data).job!;
      waiting.get(job.id)?.resolve(job);
    });
  }
  return {
    core,
    bus,
    configDir,
    logstore,
    finished(jobId) {
      let d = waiting.get(jobId);
      if (!d) waiting.set(jobId, (d = deferred()));
      return d.promise;
    },
    async close() {
      await core.stop();
      await logstore.stop();
      await bus.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}
