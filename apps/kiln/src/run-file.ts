import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError, writeFileAtomic } from '@kiln/core';

/** `<data_dir>/run/<host>.json`: how `kiln status` finds a running host, and the single-instance lock. */
export interface RunFile {
  pid: number;
  host: string;
  healthUrl: string | undefined;
  services: string[];
  startedAt: string;
  bus: string;
}

export function runDir(dataDir: string): string {
  return join(dataDir, 'run');
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function readRunFiles(dataDir: string): Promise<Array<RunFile & { path: string }>> {
  let names: string[];
  try {
    names = (await readdir(runDir(dataDir))).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  const files: Array<RunFile & { path: string }> = [];
  for (const name of names.sort()) {
    const path = join(runDir(dataDir), name);
    try {
      files.push({ ...(JSON.parse(await readFile(path, 'utf8')) as RunFile), path });
    } catch {
      // Unreadable run files are ignored: they only help find a host.
    }
  }
  return files;
}

/** Claim `<host>` in this data dir: refuse if a live process holds it, replace a stale claim. */
export async function claimRunFile(dataDir: string, file: RunFile): Promise<() => Promise<void>> {
  const path = join(runDir(dataDir), `${file.host}.json`);
  const existing = (await readRunFiles(dataDir)).find((f) => f.path === path);
  if (existing && existing.pid !== process.pid && isAlive(existing.pid)) {
    throw new KilnError('failed_precondition', `kiln ${file.host} already runs with data dir ${dataDir} (pid ${existing.pid})`, { dataDir, pid: existing.pid });
  }
  await writeFileAtomic(path, `${JSON.stringify(file, null, 2)}\n`);
  return () => rm(path, { force: true });
}
