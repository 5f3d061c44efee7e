// Firmware lanes, printed in one run: bulk-install makespan (pipelined vs serial vs the bound),
// a 1 GB output flood (RSS growth, lines/s, exact kept output), and cancel latency.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { firmwarePb as pb } from '@kiln/contracts';
import { MAX_OUTPUT_LINES_RETAINED } from '@kiln/firmware';
import { processAlive } from '@kiln/toolchain';
import { startBenchHost } from './firmware-host.js';
import { KILN_NODE_FLAGS, mb, table } from './proc.js';

const S = pb.JobStatus;
const DEVICES = ['d1', 'd2', 'd3', 'd4', 'd5', 'd6'];
const COMPILE_MS = Number(process.env.BENCH_COMPILE_MS ?? 2_000);
const UPLOAD_MS = Number(process.env.BENCH_UPLOAD_MS ?? 1_000);
const FLOOD_BYTES = Number(process.env.BENCH_FLOOD_BYTES ?? 1024 ** 3);
const FLOOD_LINE_BYTES = 100;
const CANCEL_RUNS = Number(process.env.BENCH_CANCEL_RUNS ?? 20);
/** Issue target: peak RSS growth of the process during a 1 GB flood. */
const FLOOD_RSS_CEILING_MB = Number(process.env.BENCH_FLOOD_RSS_CEILING_MB ?? 30);

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function makespan(): Promise<void> {
  const knobs = { default: { compileMs: COMPILE_MS, uploadMs: UPLOAD_MS, steps: 20 } };
  const host = await startBenchHost(DEVICES, knobs);
  try {
    let t0 = Date.now();
    const jobs = (await host.core.installBulk({ items: DEVICES.map((d) => ({ configuration: `${d}.yaml`, port: 'OTA' })) })).jobs;
    const finals = await Promise.all(jobs.map((j) => host.finished(j.id)));
    if (finals.some((j) => j.status !== S.JOB_STATUS_COMPLETED)) throw new Error('a bulk install job did not complete');
    const pipelined = Date.now() - t0;

    t0 = Date.now();
    for (const d of DEVICES) {
      const { upload } = await host.core.install({ configuration: `${d}.yaml`, port: 'OTA' });
      await host.finished(upload!.id);
    }
    const serial = Date.now() - t0;
    const bound = DEVICES.length * COMPILE_MS + UPLOAD_MS;
    console.log(`bulk install of ${DEVICES.length} devices (simulator: compile ${seconds(COMPILE_MS)}, upload ${seconds(UPLOAD_MS)} each)`);
    console.log(
      table([
        ['schedule', 'makespan', 'vs bound'],
        ['theoretical pipelined bound (N*compile + upload)', seconds(bound), '1.00x'],
        ['kiln install_bulk (two lanes)', seconds(pipelined), `${(pipelined / bound).toFixed(2)}x`],
        ['serial baseline (one install at a time)', seconds(serial), `${(serial / bound).toFixed(2)}x`],
      ]),
    );
    console.log(`pipelined is ${((pipelined / bound - 1) * 100).toFixed(1)}% above the bound (target: within 10%), ${(serial / pipelined).toFixed(2)}x faster than serial\n`);
  } finally {
    await host.close();
  }
}

interface FloodResult {
  lines: number;
  seconds: number;
  rssStartKb: number;
  rssPeakKb: number;
  keptLines: number;
  notice: string;
  expectedNotice: string;
  lastLineMatches: boolean;
}

/** Runs in its own process so its RSS is the lanes' alone. */
async function floodWorker(): Promise<FloodResult> {
  const lines = Math.ceil(FLOOD_BYTES / FLOOD_LINE_BYTES);
  const host = await startBenchHost(['flood'], { default: { compileMs: 0, steps: 2, floodLines: lines, floodLineBytes: FLOOD_LINE_BYTES } }, { outputBatchMs: 50 });
  try {
    const rssKb = () => Math.round(process.memoryUsage.rss() / 1024);
    const rssStartKb = rssKb();
    let rssPeakKb = rssStartKb;
    const sampler = setInterval(() => (rssPeakKb = Math.max(rssPeakKb, rssKb())), 100);
    const t0 = Date.now();
    const job = (await host.core.compile({ configuration: 'flood.yaml' })).job!;
    const done = await host.finished(job.id);
    const elapsed = (Date.now() - t0) / 1000;
    clearInterval(sampler);
    if (done.status !== S.JOB_STATUS_COMPLETED) throw new Error(`flood job ${done.status}: ${done.error}`);
    const output = await host.core.getJobOutput({ jobId: job.id });
    const total = Number(output.totalLines);
    const tail = await host.logstore.store.read(job.id, { tail: 1 });
    return {
      lines: total,
      seconds: elapsed,
      rssStartKb,
      rssPeakKb,
      keptLines: output.lines.length - 1,
      notice: output.lines[0]!,
      expectedNotice: `... [output trimmed: ${total - MAX_OUTPUT_LINES_RETAINED} earlier line(s) elided]`,
      lastLineMatches: output.lines.at(-1) === tail.lines[0],
    };
  } finally {
    await host.close();
  }
}

async function flood(): Promise<boolean> {
  const child = spawn(process.execPath, [...KILN_NODE_FLAGS, ...(process.env.BENCH_EXTRA_NODE_FLAGS ?? '').split(' ').filter(Boolean), fileURLToPath(import.meta.url), '--flood-worker'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`flood worker exited ${code}`);
  const r = JSON.parse(out) as FloodResult;
  const growthMb = (r.rssPeakKb - r.rssStartKb) / 1024;
  const exact = r.keptLines === MAX_OUTPUT_LINES_RETAINED && r.notice === r.expectedNotice && r.lastLineMatches;
  console.log(`output flood: one job printing ${mb(FLOOD_BYTES / 1024)} (${r.lines.toLocaleString('en-US')} lines of ${FLOOD_LINE_BYTES} bytes), host in its own node ${KILN_NODE_FLAGS.join(' ')}`);
  console.log(
    table([
      ['figure', 'value'],
      ['lines/s ingested (capped in memory + every line to the log store)', Math.round(r.lines / r.seconds).toLocaleString('en-US')],
      ['MB/s', (FLOOD_BYTES / 1024 / 1024 / r.seconds).toFixed(1)],
      ['RSS at start', mb(r.rssStartKb)],
      ['peak RSS growth', `${growthMb.toFixed(1)} MB (target < ${FLOOD_RSS_CEILING_MB} MB)`],
      ['kept output', `${r.keptLines} lines + notice: ${exact ? 'exactly the last 2000 + notice' : 'WRONG'}`],
    ]),
  );
  console.log();
  return growthMb < FLOOD_RSS_CEILING_MB && exact;
}

async function cancelLatency(): Promise<void> {
  const host = await startBenchHost(['busy', 'victim'], { devices: { busy: { hang: 'compile' }, victim: { hang: 'compile', spawnChild: true } } }, { killGraceMs: 5_000 });
  try {
    const blocker = (await host.core.compile({ configuration: 'busy.yaml' })).job!;
    const queued: number[] = [];
    for (let i = 0; i < CANCEL_RUNS; i++) {
      const job = (await host.core.upload({ configuration: 'victim.yaml', port: 'OTA' })).job!;
      const finished = host.finished(job.id);
      const t0 = process.hrtime.bigint();
      await host.core.cancel({ jobId: job.id });
      await finished;
      queued.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    await host.core.cancel({ jobId: blocker.id });
    await host.finished(blocker.id);
    const running: number[] = [];
    const { readFile } = await import('node:fs/promises');
    const { join } = await import('node:path');
    for (let i = 0; i < CANCEL_RUNS; i++) {
      const job = (await host.core.compile({ configuration: 'victim.yaml' })).job!;
      const pidFile = join(host.configDir, '.esphome/sim-child.pid');
      let grandchild = 0;
      for (let k = 0; k < 500 && !grandchild; k++) {
        grandchild = Number(await readFile(pidFile, 'utf8').catch(() => '0'));
        if (!grandchild || !processAlive(grandchild)) {
          grandchild = 0;
          await new Promise((r) => setTimeout(r, 10));
        }
      }
      const t0 = process.hrtime.bigint();
      await host.core.cancel({ jobId: job.id });
      await host.finished(job.id);
      while (processAlive(grandchild)) await new Promise((r) => setTimeout(r, 1));
      running.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    console.log(`cancel latency over ${CANCEL_RUNS} runs each`);
    const ms = (x: number) => `${x.toFixed(1)} ms`;
    console.log(
      table([
        ['cancel of', 'median', 'max'],
        ['a queued job (until the cancelled event)', ms(median(queued)), ms(Math.max(...queued))],
        ['a running job (until its whole process tree is gone)', ms(median(running)), ms(Math.max(...running))],
      ]),
    );
  } finally {
    await host.close();
  }
}


/** BENCH_FIRMWARE=makespan,flood,cancel picks sections (default: all). */
const SECTIONS = new Set((process.env.BENCH_FIRMWARE ?? 'makespan,flood,cancel').split(','));

export async function firmwareBenchmarks(): Promise<boolean> {
  let ok = true;
  if (SECTIONS.has('makespan')) await makespan();
  if (SECTIONS.has('flood')) ok = (await flood()) && ok;
  if (SECTIONS.has('cancel')) await cancelLatency();
  return ok;
}

if (process.argv[2] === '--flood-worker') {
  process.stdout.write(JSON.stringify(await floodWorker()));
} else if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = (await firmwareBenchmarks()) ? 0 : 1;
}
