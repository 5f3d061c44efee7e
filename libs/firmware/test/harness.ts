import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInProcessBus, type Bus } from '@kiln/bus';
import { afterEach } from 'vitest';
import { loadConfig, v } from '@kiln/config';
import { createLogStoreBusClient, firmwarePb as pb, firmwareSubjects, type LogStoreApi } from '@kiln/contracts';
import { deferred, systemClock, type Deferred } from '@kiln/core';
import { createRootLogger } from '@kiln/logging';
import { createLogStoreService, type LogStoreService } from '@kiln/logstore';
import { SIM_BIN } from '@kiln/esphome-sim';
import { createCompileWorkerService, FirmwareCore, firmwareRunningGroups, firmwareSettingsSchema, WorkerPoolExecutor, type FirmwareSettings, type JobExecutor } from '../src/index.js';
import type { KilnService } from '@kiln/contracts';
import { Toolchain, type RunningGroups, type ToolchainAction, type ToolchainProcess } from '@kiln/toolchain';

export type Knobs = Record<string, unknown>;

/** The real toolchain adapter running the simulator, recording every process it starts. */
export class RecordingToolchain extends Toolchain {
  readonly started: Array<{ action: ToolchainAction['kind']; configuration: string }> = [];
  override run(action: ToolchainAction, configPath: string, opts: { dataDir: string; cwd?: string }): ToolchainProcess {
    this.started.push({ action: action.kind, configuration: configPath.split('/').pop()! });
    return super.run(action, configPath, opts);
  }
}

export interface JobEvent {
  event: string;
  job?: pb.Job;
  jobId: string;
  status?: pb.JobStatus;
}

export interface Harness {
  root: string;
  core: FirmwareCore;
  bus: Bus;
  logs: LogStoreApi;
  logstore: LogStoreService;
  toolchain: RecordingToolchain;
  dataDir: string;
  configDir: string;
  events: JobEvent[];
  waitFor(jobId: string, status: pb.JobStatus): Promise<pb.Job>;
  /** Until the toolchain has really started a process for this action and configuration. */
  waitForProcess(action: ToolchainAction['kind'], configuration: string): Promise<void>;
  restart(): Promise<FirmwareCore>;
  /** With `workers`: start a compile worker (same bus, config dir and simulator), stopped at close. */
  startWorker(id: string): Promise<KilnService>;
  close(): Promise<void>;
}

const decoders: Record<string, (data: Uint8Array) => { job?: pb.Job }> = {
  queued: (d) => pb.JobQueued.decode(d),
  started: (d) => pb.JobStarted.decode(d),
  completed: (d) => pb.JobCompleted.decode(d),
  failed: (d) => pb.JobFailed.decode(d),
  cancelled: (d) => pb.JobCancelled.decode(d),
};

export async function writeDevices(configDir: string, names: string[]): Promise<void> {
  for (const name of names) {
    await writeFile(join(configDir, `${name}.yaml`), `esphome:\n  name: ${name}\n  friendly_name: ${name.toUpperCase()}\nesp32:\n  board: esp32dev\nlogger:\n`);
  }
}

export interface HarnessOptions {
  knobs?: { default?: Knobs; devices?: Record<string, Knobs> };
  settings?: Partial<FirmwareSettings>;
  devices?: string[];
  /** Reuse an existing root (data + config dirs), e.g. after a crashed host. */
  root?: string;
  /** Run the compile lane on compile workers over the harness's bus (firmware.compileExecutor=workers). */
  workers?: boolean;
  /** The compile lane's executor (kept across restarts), given the harness's toolchain, config dir and running-process records. */
  compileExecutor?: (toolchain: Toolchain, configDir: string, groups: RunningGroups) => JobExecutor;
}

export async function harness(options: HarnessOptions = {}): Promise<Harness> {
  const root = options.root ?? (await mkdtemp(join(tmpdir(), 'kiln-firmware-')));
  const dataDir = join(root, 'data');
  const configDir = join(root, 'config');
  await (await import('node:fs/promises')).mkdir(configDir, { recursive: true });
  await writeDevices(configDir, options.devices ?? ['dev-a', 'dev-b', 'dev-c']);
  const knobsFile = join(root, 'knobs.json');
  await writeFile(knobsFile, JSON.stringify({ default: { compileMs: 150, uploadMs: 100, steps: 10 }, ...options.knobs }));
  const bus = createInProcessBus();
  const logger = await createRootLogger({ level: 'silent', pretty: false });
  const config = await loadConfig({
    env: { HOME: '/nonexistent' },
    flags: [
      { path: 'dataDir', value: dataDir, flag: '--data-dir' },
      { path: 'logstore.flushIntervalMs', value: '5', flag: '--set' },
    ],
  });
  const logstore = createLogStoreService({ name: 'logstore', bus, config, logger, fail: () => undefined });
  await logstore.start();
  const logs = createLogStoreBusClient(bus);
  const settings = v.parse(firmwareSettingsSchema, { killGraceMs: 1000, outputBatchMs: 10, ...options.settings });
  const toolchain = new RecordingToolchain({ command: [SIM_BIN], killGraceMs: settings.killGraceMs, env: { ESPHOME_SIM_KNOBS: knobsFile } });
  const events: JobEvent[] = [];
  const waiters: Array<{ jobId: string; status: pb.JobStatus; done: Deferred<pb.Job> }> = [];
  bus.subscribe(firmwareSubjects.allEvents, (msg) => {
    const event = msg.subject.split('.').pop()!;
    const decode = decoders[event];
    if (!decode) return;
    const job = decode(msg.data).job!;
    events.push({ event, job, jobId: job.id, status: job.status });
    for (const w of [...waiters]) {
      if (w.jobId === job.id && w.status === job.status) {
        waiters.splice(waiters.indexOf(w), 1);
        w.done.resolve(job);
      }
    }
  });
  const pool = options.workers ? new WorkerPoolExecutor({ bus, logger, clock: systemClock, timeoutMs: settings.workerTimeoutMs }) : options.compileExecutor?.(toolchain, configDir, firmwareRunningGroups(dataDir));
  await pool?.start();
  const workers: KilnService[] = [];
  const make = () => new FirmwareCore({ dataDir, configDir, settings, toolchain, logs, bus, logger, clock: systemClock, ...(pool ? { compileExecutor: pool } : {}) });
  const h: Harness = {
    root,
    core: make(),
    bus,
    logs,
    logstore,
    toolchain,
    dataDir,
    configDir,
    events,
    waitFor(jobId, status) {
      const seen = events.find((e) => e.jobId === jobId && e.status === status);
      if (seen) return Promise.resolve(seen.job!);
      const done = deferred<pb.Job>();
      waiters.push({ jobId, status, done });
      return done.promise;
    },
    async waitForProcess(action, configuration) {
      for (let i = 0; i < 500; i++) {
        if (toolchain.started.some((s) => s.action === action && s.configuration === configuration)) return;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error(`no ${action} process for ${configuration}`);
    },
    async restart() {
      if (!h.core.isStopped) await h.core.stop();
      h.core = make();
      await h.core.restore();
      return h.core;
    },
    async startWorker(id) {
      const flags = [
        { path: 'configDir', value: configDir, flag: '--config-dir' },
        { path: 'firmware.toolchain', value: SIM_BIN, flag: '--set' },
        { path: 'firmware.killGraceMs', value: '1000', flag: '--set' },
        { path: 'worker.id', value: id, flag: '--set' },
        { path: 'worker.heartbeatMs', value: '50', flag: '--set' },
      ];
      const workerConfig = await loadConfig({ env: { HOME: '/nonexistent' }, flags });
      // The worker's toolchain inherits this process's environment: the simulator finds its knobs there.
      process.env.ESPHOME_SIM_KNOBS = knobsFile;
      const worker = createCompileWorkerService({ name: 'worker', bus, config: workerConfig, logger, fail: () => undefined });
      await worker.start();
      workers.push(worker);
      return worker;
    },
    async close() {
      for (const w of workers.splice(0)) await w.stop();
      await h.core.stop();
      await pool?.stop();
      await logstore.stop();
      await bus.close();
      await rm(root, { recursive: true, force: true });
    },
  };
  await h.core.restore();
  return h;
}

export const S = pb.JobStatus;

/** A `start()` for a test file: every harness it makes is closed after each test. */
export function harnessPerTest(): (options?: HarnessOptions) => Promise<Harness> {
  const open: Harness[] = [];
  afterEach(async () => {
    for (const h of open.splice(0)) await h.close();
  });
  return async (options = {}) => {
    const h = await harness(options);
    open.push(h);
    return h;
  };
}

/** Rewrite the persisted job history (the service must be stopped), e.g. to plant a legacy or orphan job. */
export async function editSavedJobs(h: Harness, edit: (jobs: Array<Record<string, unknown>>) => void): Promise<void> {
  const path = join(h.dataDir, 'firmware/jobs.json');
  const saved = JSON.parse(await readFile(path, 'utf8')) as { version: number; jobs: Array<Record<string, unknown>> };
  edit(saved.jobs);
  await writeFile(path, JSON.stringify(saved));
}
