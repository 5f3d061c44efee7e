// Log store append throughput and RSS growth while 1 GB of build output goes through it, next to a
// plain file write stream of the same lines (the floor), each in its own process, in one run.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInProcessBus } from '@kiln/bus';
import { loadConfig } from '@kiln/config';
import { createLogStoreBusClient } from '@kiln/contracts';
import { createRootLogger } from '@kiln/logging';
import { createLogStoreService } from '@kiln/logstore';
import { KILN_NODE_FLAGS, mb, table } from './proc.js';

const TOTAL_BYTES = Number(process.env.BENCH_LOG_BYTES ?? 1024 ** 3);
const BATCH_LINES = 100;
/** A RSS growth above this fails the run: the store must not hold output in memory. */
const GROWTH_CEILING_MB = Number(process.env.BENCH_LOG_GROWTH_CEILING_MB ?? 32);

type Mode = 'raw' | 'store' | 'bus';
interface Result {
  mode: Mode;
  lines: number;
  bytes: number;
  seconds: number;
  rssStartKb: number;
  rssMaxKb: number;
  /** Heap still live after a full GC, at the start and at the end: what the writer really retains. */
  heapStartKb: number;
  heapEndKb: number;
}

/** Worker-only: a full GC before reading the heap, so garbage is not counted as retained. */
function liveHeapKb(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return Math.round(process.memoryUsage().heapUsed / 1024);
}

/** Lines shaped like compiler output: varied lengths, ~100 bytes on average. */
function batch(start: number): string[] {
  const lines: string[] = [];
  for (let i = 0; i < BATCH_LINES; i++) {
    const n = start + i;
    lines.push(`[${n % 1424}/1424] Compiling .pioenvs/device/src/esphome/components/sensor_${n % 97}.cpp.o ${'-O2 '.repeat(n % 9)}`);
  }
  return lines;
}

async function worker(mode: Mode, dir: string): Promise<Result> {
  const rssKb = () => Math.round(process.memoryUsage.rss() / 1024);
  let append: (lines: string[]) => Promise<unknown>;
  let finish: () => Promise<void>;
  if (mode === 'raw') {
    const out = createWriteStream(join(dir, 'raw.log'));
    append = (lines) => new Promise<void>((resolve) => (out.write(`${lines.join('\n')}\n`) ? resolve() : out.once('drain', resolve)));
    finish = () => new Promise((resolve) => out.end(resolve));
  } else {
    const bus = createInProcessBus();
    const config = await loadConfig({ env: { HOME: '/nonexistent' }, flags: [{ path: 'dataDir', value: dir, flag: '--data-dir' }, { path: 'logstore.grpcListen', value: 'off', flag: '--set' }] });
    const service = createLogStoreService({ name: 'logstore', bus, config, logger: await createRootLogger({ level: 'silent', pretty: false }), fail: (e) => { throw e; } });
    await service.start();
    const api = mode === 'store' ? service.store : createLogStoreBusClient(bus);
    append = (lines) => api.append('bench-job', lines);
    finish = async () => {
      await api.close('bench-job');
      await service.stop();
      await bus.close();
    };
  }
  // Warm up before taking the starting RSS, so JIT and buffers are not counted as growth.
  let lines = 0;
  let bytes = 0;
  for (let i = 0; i < 200; i++, lines += BATCH_LINES) await append(batch(lines));
  const heapStartKb = liveHeapKb();
  const rssStartKb = rssKb();
  let rssMaxKb = rssStartKb;
  const started = process.hrtime.bigint();
  while (bytes < TOTAL_BYTES) {
    const b = batch(lines);
    for (const l of b) bytes += l.length + 1;
    await append(b);
    lines += BATCH_LINES;
    if (lines % 50_000 === 0) rssMaxKb = Math.max(rssMaxKb, rssKb());
  }
  await finish();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { mode, lines, bytes, seconds, rssStartKb, rssMaxKb: Math.max(rssMaxKb, rssKb()), heapStartKb, heapEndKb: liveHeapKb() };
}

async function runWorker(mode: Mode): Promise<Result> {
  const dir = await mkdtemp(join(tmpdir(), `kiln-bench-log-${mode}-`));
  try {
    const child = spawn(process.execPath, [...KILN_NODE_FLAGS, '--expose-gc', fileURLToPath(import.meta.url), '--worker', mode, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    if (code !== 0) throw new Error(`${mode} worker exited ${code}`);
    return JSON.parse(out) as Result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function logStoreAppend(): Promise<boolean> {
  const results: Result[] = [];
  for (const mode of ['raw', 'store', 'bus'] as const) results.push(await runWorker(mode));
  const raw = results[0]!;
  const label: Record<Mode, string> = { raw: 'plain write stream (floor)', store: 'log store (in-process API)', bus: 'log store via in-process bus' };
  console.log(`log store append: ${mb(TOTAL_BYTES / 1024)} of ~100-byte lines in batches of ${BATCH_LINES} (each writer in its own node ${KILN_NODE_FLAGS.join(' ')})`);
  console.log(
    table([
      ['writer', 'lines/s', 'MB/s', 'vs floor', 'RSS start', 'RSS growth (max)', 'live heap growth'],
      ...results.map((r) => [
        label[r.mode],
        Math.round(r.lines / r.seconds).toLocaleString('en-US'),
        (r.bytes / 1024 / 1024 / r.seconds).toFixed(1),
        `${(r.lines / r.seconds / (raw.lines / raw.seconds)).toFixed(2)}x`,
        mb(r.rssStartKb),
        mb(r.rssMaxKb - r.rssStartKb),
        mb(r.heapEndKb - r.heapStartKb),
      ]),
    ]),
  );
  console.log('RSS growth includes GC slack (garbage not yet collected); live heap growth is what stays after a full GC.');
  const worst = Math.max(...results.filter((r) => r.mode !== 'raw').map((r) => (r.rssMaxKb - r.rssStartKb) / 1024));
  const ok = worst <= GROWTH_CEILING_MB;
  console.log(`RSS growth gate: ${worst.toFixed(1)} MB ${ok ? '<=' : '>'} ${GROWTH_CEILING_MB} MB ceiling: ${ok ? 'pass' : 'FAIL'}`);
  return ok;
}

if (process.argv[2] === '--worker') {
  process.stdout.write(JSON.stringify(await worker(process.argv[3] as Mode, process.argv[4]!)));
} else if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = (await logStoreAppend()) ? 0 : 1;
}
