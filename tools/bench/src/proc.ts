import { readFile } from 'node:fs/promises';

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
