// Slow followers during an output flood: the gateway host's peak RSS growth and the job's duration
// with no follower, one reading follower, one paused follow_job and three paused follow_jobs, side
// by side. The host (log store + firmware + gateway) runs in its own process so its RSS is its own;
// the followers run here. A paused follower's socket stops reading for the whole flood.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInProcessBus } from '@kiln/bus';
import { loadConfig } from '@kiln/config';
import type { ServiceDeps } from '@kiln/contracts';
import { SIM_BIN } from '@kiln/esphome-sim';
import { createDevicesService } from '@kiln/devices';
import { createFirmwareService } from '@kiln/firmware';
import { createGatewayService } from '@kiln/gateway';
import { createRootLogger } from '@kiln/logging';
import { createLogStoreService } from '@kiln/logstore';
import WebSocket from 'ws';
import { KILN_NODE_FLAGS, mb, table } from './proc.js';

const FLOOD_BYTES = Number(process.env.BENCH_GATEWAY_FLOOD_BYTES ?? 1024 ** 3);
const LINE_BYTES = 100;

type Frame = { message_id?: number; event?: string; result?: unknown; data?: Record<string, unknown> };

/** The host process: services up, then `{url}` on stdout; IPC 'mark' starts the RSS watch, 'report' ends it. */
async function floodHost(dataDir: string, configDir: string): Promise<void> {
  const config = await loadConfig({
    env: { HOME: '/nonexistent' },
    flags: [
      { path: 'dataDir', value: dataDir, flag: '--data-dir' },
      { path: 'configDir', value: configDir, flag: '--config-dir' },
      { path: 'gateway.listen', value: '127.0.0.1:0', flag: '--set' },
      { path: 'firmware.toolchain', value: SIM_BIN, flag: '--set' },
    ],
  });
  const bus = createInProcessBus();
  const logger = await createRootLogger({ level: 'silent', pretty: false });
  const deps = (name: string): ServiceDeps => ({ name, bus, config, logger, fail: () => undefined });
  const gateway = createGatewayService(deps('gateway'));
  for (const s of [createLogStoreService(deps('logstore')), createFirmwareService(deps('firmware')), createDevicesService(deps('devices')), gateway]) await s.start();
  let baseline = process.memoryUsage.rss();
  let peak = baseline;
  setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20).unref();
  process.on('message', (m) => {
    if (m === 'mark') peak = baseline = process.memoryUsage.rss();
    process.send!({ baseline, peak: Math.max(peak, process.memoryUsage.rss()) });
  });
  process.on('disconnect', () => process.exit(0));
  process.stdout.write(`${JSON.stringify({ url: `${gateway.server!.url.replace('http', 'ws')}/ws` })}\n`);
}

class Socket {
  readonly frames: Frame[] = [];
  #waiters: Array<[(f: Frame) => boolean, (f: Frame) => void]> = [];
  #id = 0;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => {
      const f = JSON.parse(d.toString()) as Frame;
      this.frames.push(f);
      for (const w of [...this.#waiters]) {
        if (!w[0](f)) continue;
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w[1](f);
      }
    });
  }

  static open(url: string): Promise<Socket> {
    const ws = new WebSocket(url);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new Socket(ws)));
      ws.once('error', reject);
    });
  }

  send(command: string, args: object = {}): number {
    this.ws.send(JSON.stringify({ command, message_id: ++this.#id, args }));
    return this.#id;
  }

  next(match: (f: Frame) => boolean): Promise<Frame> {
    const seen = this.frames.find(match);
    return seen ? Promise.resolve(seen) : new Promise((resolve) => this.#waiters.push([match, resolve]));
  }

  /** Stop (or go on) reading: the TCP socket no longer drains, so the gateway's sends back up. */
  reading(on: boolean): void {
    const socket = (this.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    if (on) socket.resume();
    else socket.pause();
  }
}

interface Scenario {
  name: string;
  command?: 'firmware/follow_job' | 'firmware/follow_jobs';
  followers: number;
  paused: boolean;
}

interface Outcome {
  seconds: number;
  growthKb: number;
  /** The first follower's output: delivered lines and lines it was told were dropped. */
  delivered: number;
  dropped: number;
}

async function run(scenario: Scenario): Promise<Outcome> {
  const root = await mkdtemp(join(tmpdir(), 'kiln-bench-gw-flood-'));
  const configDir = join(root, 'config');
  await mkdir(configDir, { recursive: true });
  for (const d of ['blocker', 'flood']) await writeFile(join(configDir, `${d}.yaml`), `esphome:\n  name: ${d}\nesp32:\n  board: esp32dev\n`);
  const knobs = join(root, 'knobs.json');
  await writeFile(knobs, JSON.stringify({ devices: { blocker: { compileMs: 1_000, steps: 2 }, flood: { compileMs: 0, steps: 2, floodLines: Math.ceil(FLOOD_BYTES / LINE_BYTES), floodLineBytes: LINE_BYTES } } }));
  const child: ChildProcess = spawn(process.execPath, [...KILN_NODE_FLAGS, fileURLToPath(import.meta.url), '--flood-host', join(root, 'data'), configDir], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    env: { ...process.env, ESPHOME_SIM_KNOBS: knobs },
  });
  try {
    const url = await new Promise<string>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve((JSON.parse(d.toString().split('\n')[0]!) as { url: string }).url)));
    const rss = (m: string) => new Promise<{ baseline: number; peak: number }>((resolve) => (child.once('message', (r) => resolve(r as { baseline: number; peak: number })), child.send(m)));
    const control = await Socket.open(url);
    const events = control.send('subscribe_events');
    await control.next((f) => f.message_id === events && f.event === 'initial_state');
    control.send('firmware/compile', { configuration: 'blocker.yaml' });
    const compile = control.send('firmware/compile', { configuration: 'flood.yaml' });
    const jobId = ((await control.next((f) => f.message_id === compile && 'result' in f)).result as { id: string }).id;
    const followers: Array<{ socket: Socket; id: number }> = [];
    for (let i = 0; i < scenario.followers; i++) {
      const socket = await Socket.open(url);
      const id = socket.send(scenario.command!, scenario.command === 'firmware/follow_job' ? { job_id: jobId } : {});
      await socket.next((f) => f.message_id === id && (f.event === 'job_state' || f.event === 'initial_state'));
      if (scenario.paused) socket.reading(false);
      followers.push({ socket, id });
    }
    await rss('mark');
    const done = await control.next((f) => f.message_id === events && f.event === 'job_completed' && f.data?.['id'] === jobId);
    const { baseline, peak } = await rss('report');
    const job = done.data as { started_at: string; finished_at: string };
    let delivered = 0;
    let dropped = 0;
    const first = followers[0];
    if (first) {
      first.socket.reading(true);
      const ended = (f: Frame) => f.message_id === first.id && ('result' in f || (f.event === 'job_completed' && f.data?.['id'] === jobId));
      await first.socket.next(ended);
      for (const f of first.socket.frames) {
        if (f.message_id !== first.id || f.data?.['job_id'] !== jobId) continue;
        if (f.event === 'job_output') delivered += (f.data['lines'] as string[]).length;
        if (f.event === 'job_output_dropped') dropped += f.data['dropped_lines'] as number;
      }
    }
    for (const f of followers) f.socket.ws.close();
    control.ws.close();
    return { seconds: (Date.parse(job.finished_at) - Date.parse(job.started_at)) / 1000, growthKb: (peak - baseline) / 1024, delivered, dropped };
  } finally {
    child.kill();
    await rm(root, { recursive: true, force: true });
  }
}

const SCENARIOS: Scenario[] = [
  { name: 'no follower', followers: 0, paused: false },
  { name: '1 follow_job, reading', command: 'firmware/follow_job', followers: 1, paused: false },
  { name: '1 follow_job, paused', command: 'firmware/follow_job', followers: 1, paused: true },
  { name: '3 follow_jobs, paused', command: 'firmware/follow_jobs', followers: 3, paused: true },
];

export async function gatewayFlood(): Promise<void> {
  const rows: string[][] = [['followers', 'job duration', 'peak RSS growth', 'first follower: delivered + told dropped']];
  for (const s of SCENARIOS) {
    const r = await run(s);
    const n = (x: number) => x.toLocaleString('en-US');
    rows.push([s.name, `${r.seconds.toFixed(1)} s`, mb(r.growthKb), s.followers ? `${n(r.delivered)} + ${n(r.dropped)} lines` : '-']);
  }
  console.log(`gateway under an output flood: one job printing ${mb(FLOOD_BYTES / 1024)} (${LINE_BYTES}-byte lines), host in its own node ${KILN_NODE_FLAGS.join(' ')}, default gateway.streamMaxBytes`);
  console.log(table(rows));
  console.log('a paused follower stops reading its socket for the whole flood, then resumes; its output is dropped past the byte bound and told as job_output_dropped.');
}

if (process.argv[2] === '--flood-host') await floodHost(process.argv[3]!, process.argv[4]!);
else if (import.meta.url === `file://${process.argv[1]}`) await gatewayFlood();
