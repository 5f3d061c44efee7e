import { readdir, rm, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '@kiln/core';
import { remoteBuildsRoot } from '@kiln/core';

export interface SweepResult {
  removedDirs: string[];
  removedBundles: string[];
}

/**
 * Reclaim cold remote builds: every `<.remote_builds>/<dashboard_id>/<device>/` untouched for `ttlMs`
 * (builds touch their dir when they start and end) and every bundle older than that, except those an
 * in-flight (queued or running) build uses.
 */
export async function sweepColdBuilds(options: {
  configDir: string;
  bundleDir: string;
  ttlMs: number;
  clock: Clock;
  inFlightDirs: () => Set<string>;
  inFlightBundles: () => Set<string>;
}): Promise<SweepResult> {
  const result: SweepResult = { removedDirs: [], removedBundles: [] };
  const cutoff = options.clock.now() - options.ttlMs;
  const root = remoteBuildsRoot(options.configDir);
  for (const owner of await list(root)) {
    const ownerDir = join(root, owner);
    for (const device of await list(ownerDir)) {
      const dir = join(ownerDir, device);
      const info = await stat(dir).catch(() => undefined);
      // Checked right before removal: a build queued while the sweep walked is still spared.
      if (!info?.isDirectory() || info.mtimeMs > cutoff || options.inFlightDirs().has(dir)) continue;
      await rm(dir, { recursive: true, force: true });
      result.removedDirs.push(dir);
    }
    await rmdir(ownerDir).catch(() => undefined); // only when empty
  }
  for (const owner of await list(options.bundleDir)) {
    const ownerDir = join(options.bundleDir, owner);
    for (const file of await list(ownerDir)) {
      const path = join(ownerDir, file);
      const info = await stat(path).catch(() => undefined);
      if (!info || info.mtimeMs > cutoff || options.inFlightBundles().has(path)) continue;
      await rm(path, { force: true });
      result.removedBundles.push(path);
    }
    await rmdir(ownerDir).catch(() => undefined);
  }
  return result;
}

async function list(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}
