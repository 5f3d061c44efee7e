import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Resident and proportional set size of a process, from /proc (Linux). */
export async function memoryOf(pid: number): Promise<{ rssKb: number; pssKb: number }> {
  const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? NaN);
  return { rssKb: field('Rss'), pssKb: field('Pss') };
}

export const mb = (kb: number) => `${(kb / 1024).toFixed(1)} MB`;

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')).join('\n');
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The V8 flags apps/kiln/bin/kiln runs Kiln with; benchmark workers that stand in for Kiln use them too. */
export const KILN_NODE_FLAGS = ['--max-semi-space-size=2', '--optimize-for-size'];

/** Until the Kiln host `host` (run file `<dataDir>/run/<host>.json`) answers /ready with 200. */
export async function waitReady(dataDir: string, host: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`kiln ${host} exited with ${child.exitCode}`);
    try {
      const run = JSON.parse(await readFile(join(dataDir, 'run', `${host}.json`), 'utf8')) as { healthUrl?: string };
      if (run.healthUrl && (await fetch(`${run.healthUrl}/ready`)).status === 200) return;
    } catch {
      // not up yet
    }
    await sleep(50);
  }
  throw new Error(`kiln ${host} did not become ready`);
}

const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 3_000);
const SAMPLES = 5;

export interface Memory {
  rssKb: number;
  pssKb: number;
}

/** Idle memory of running processes: settle (`settleMs`), then the median of 5 samples each (sampled side by side). */
export async function settledMemory(pids: readonly number[], settleMs = SETTLE_MS): Promise<Memory[]> {
  await sleep(settleMs);
  const samples: Memory[][] = pids.map(() => []);
  for (let i = 0; i < SAMPLES; i++) {
    for (const [p, pid] of pids.entries()) samples[p]!.push(await memoryOf(pid));
    await sleep(200);
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return samples.map((s) => ({ rssKb: median(s.map((x) => x.rssKb)), pssKb: median(s.map((x) => x.pssKb)) }));
}
