// Fan-out of one job's output to 100 WebSocket followers: delivered lines/s and p95 delivery lag
// (bus event published → frame received by a follower), next to the single-follower baseline.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInProcessBus } from '@kiln/bus';
import { loadConfig } from '@kiln/config';
import { logStorePb, logStoreSubjects, type KilnService, type ServiceDeps } from '@kiln/contracts';
import { SIM_BIN } from '@kiln/esphome-sim';
import { createFirmwareService } from '@kiln/firmware';
import { createGatewayService } from '@kiln/gateway';
import { createRootLogger } from '@kiln/logging';
import { createLogStoreService } from '@kiln/logstore';
import WebSocket from 'ws';
import { gatewayFlood } from './gateway-flood.js';
import { table } from './proc.js';

const LINES = Number(process.env.BENCH_FANOUT_LINES ?? 100_000);
const FOLLOWERS = Number(process.env.BENCH_FANOUT_FOLLOWERS ?? 100);

interface Follower {
  lines: number;
  first: number;
  last: number;
  arrivals: Array<[seq: number, at: number]>;
  done: Promise<void>;
  socket: WebSocket;
}

async function run(followers: number): Promise<{ followers: number; linesPerSecond: number; perFollower: number; delivered: number; p50: number; p95: number }> {
  const root = await mkdtemp(join(tmpdir(), 'kiln-bench-fanout-'));
  const configDir = join(root, 'config');
  await mkdir(configDir, { recursive: true });
  for (const d of ['blocker', 'flood']) await writeFile(join(configDir, `${d}.yaml`), `esphome:\n  name: ${d}\nesp32:\n  board: esp32dev\n`);
  const knobs = join(root, 'knobs.json');
  await writeFile(knobs, JSON.stringify({ devices: { blocker: { compileMs: 1_500 }, flood: { compileMs: 0, steps: 1, floodLines: LINES, floodLineBytes: 100 } } }));
  process.env['ESPHOME_SIM_KNOBS'] = knobs;
  const config = await loadConfig({
    env: { HOME: '/nonexistent' },
    flags: [
      { path: 'dataDir', value: join(root, 'data'), flag: '--data-dir' },
      { path: 'configDir', value: configDir, flag: '--config-dir' },
      { path: 'gateway.listen', value: '127.0.0.1:0', flag: '--set' },
      { path: 'firmware.toolchain', value: SIM_BIN, flag: '--set' },
    ],
  });
  const bus = createInProcessBus();
  const logger = await createRootLogger({ level: 'silent', pretty: false });
  const deps = (name: string): ServiceDeps => ({ name, bus, config, logger, fail: () => undefined });
  const gateway = createGatewayService(deps('gateway'));
  const services: KilnService[] = [createLogStoreService(deps('logstore')), createFirmwareService(deps('firmware')), gateway];
  for (const s of services) await s.start();
  try {
    const url = `${gateway.server!.url.replace('http', 'ws')}/ws`;
    const published = new Map<number, number>();
    // Each output batch is published once, by the log store, when it is committed.
    bus.subscribe(logStoreSubjects.allLines, (msg) => published.set(logStorePb.LinesAppended.decode(msg.data).firstSeq, performance.now()));
    const control = await open(url);
    const ask = (command: string, args: object) =>
      new Promise<Record<string, unknown>>((resolve) => {
        const id = Math.floor(Math.random() * 1e9);
        const onMessage = (d: WebSocket.RawData) => {
          const f = JSON.parse(d.toString()) as { message_id?: number; result?: Record<string, unknown> };
          if (f.message_id !== id) return;
          control.off('message', onMessage);
          resolve(f.result!);
        };
        control.on('message', onMessage);
        control.send(JSON.stringify({ command, message_id: id, args }));
      });
    await ask('firmware/compile', { configuration: 'blocker.yaml' });
    const job = await ask('firmware/compile', { configuration: 'flood.yaml' });
    const fs: Follower[] = [];
    for (let i = 0; i < followers; i++) fs.push(await follow(url, String(job.id)));
    await Promise.all(fs.map((f) => f.done));
    const lags: number[] = [];
    for (const f of fs) for (const [seq, at] of f.arrivals) {
      const sent = published.get(seq);
      if (sent !== undefined) lags.push(at - sent);
    }
    lags.sort((a, b) => a - b);
    const delivered = fs.reduce((n, f) => n + f.lines, 0);
    const start = Math.min(...fs.map((f) => f.first));
    const end = Math.max(...fs.map((f) => f.last));
    for (const f of fs) f.socket.close();
    control.close();
    return {
      followers,
      linesPerSecond: delivered / ((end - start) / 1000),
      perFollower: delivered / followers / ((end - start) / 1000),
      delivered: delivered / (followers * LINES),
      p50: lags[Math.floor(lags.length * 0.5)] ?? NaN,
      p95: lags[Math.floor(lags.length * 0.95)] ?? NaN,
    };
  } finally {
    for (const s of [...services].reverse()) await s.stop();
    await bus.close();
    await rm(root, { recursive: true, force: true });
  }
}

function open(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

async function follow(url: string, jobId: string): Promise<Follower> {
  const socket = await open(url);
  const f: Follower = { lines: 0, first: Infinity, last: 0, arrivals: [], done: Promise.resolve(), socket };
  f.done = new Promise((resolve) => {
    socket.on('message', (d) => {
      const frame = JSON.parse(d.toString()) as { message_id?: number; event?: string; result?: unknown; data?: { first_seq?: number; lines?: string[] } };
      if (frame.message_id !== 1) return;
      if (frame.event === 'job_output' && frame.data?.first_seq !== undefined) {
        const now = performance.now();
        f.arrivals.push([frame.data.first_seq, now]);
        f.lines += frame.data.lines?.length ?? 0;
        f.first = Math.min(f.first, now);
        f.last = now;
      }
      if ('result' in frame) resolve();
    });
  });
  socket.send(JSON.stringify({ command: 'firmware/follow_job', message_id: 1, args: { job_id: jobId } }));
  return f;
}

export async function gatewayFanout(): Promise<void> {
  const baseline = await run(1);
  const fanout = await run(FOLLOWERS);
  const ms = (x: number) => `${x.toFixed(1)} ms`;
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  console.log(`gateway fan-out: one job printing ${n(LINES)} lines, followed over WebSocket (followers and server in one process)`);
  console.log(
    table([
      ['followers', 'lines/s delivered (all)', 'lines/s per follower', 'delivered', 'lag p50', 'lag p95'],
      ...[baseline, fanout].map((r) => [String(r.followers), n(r.linesPerSecond), n(r.perFollower), `${(r.delivered * 100).toFixed(1)}%`, ms(r.p50), ms(r.p95)]),
    ]),
  );
  console.log('lag: from the output batch published on the bus to its frame arriving at a follower; output below 100% was dropped for followers that fell behind (lifecycle and result never are).');
}

/** `npm run bench:gateway`: BENCH_GATEWAY=fanout,flood picks sections (default: both). */
export async function gatewayBenchmarks(): Promise<void> {
  const sections = new Set((process.env.BENCH_GATEWAY ?? 'fanout,flood').split(','));
  if (sections.has('fanout')) await gatewayFanout();
  if (sections.has('fanout') && sections.has('flood')) console.log();
  if (sections.has('flood')) await gatewayFlood();
}

if (import.meta.url === `file://${process.argv[1]}`) await gatewayBenchmarks();
