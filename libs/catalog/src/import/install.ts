import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDirectory } from '@kiln/core';
import { CURRENT_LINK, loadCatalog } from '../runtime/load.js';
import { DEFAULT_ARCHIVE_LIMITS, isDefinitionsArchive, openArchiveSource, type ArchiveLimits } from './archive.js';
import { openUpstreamSource, type UpstreamSource } from './sources.js';
import { writeCatalogTree, type ImportProgress, type TreeSummary } from './write-tree.js';

/** Trees under a catalog directory; `.import-*` are unfinished (a killed import), never loaded. */
const TREE_PREFIX = 'tree-';
const STAGING_PREFIX = '.import-';

export interface ImportResult extends TreeSummary {
  tree: string;
}

/**
 * Import upstream catalog data into `catalogDir`: the new tree is written in a sibling staging
 * directory, checked by loading it, renamed to `tree-<stamp>`, and only then made current by
 * renaming a fresh symlink over `current` (atomic). Killed at any point, `current` still names the
 * previous complete tree; leftovers are removed by the next import.
 */
export async function importCatalog(
  catalogDir: string,
  from: readonly string[],
  onProgress?: (p: ImportProgress) => void,
  archiveLimits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS,
): Promise<ImportResult> {
  // Plain sources first: a wrong --from fails before anything is written.
  const archives = new Set<string>();
  const sources: (UpstreamSource | undefined)[] = [];
  for (const path of from) {
    if (await isDefinitionsArchive(path)) archives.add(path);
    sources.push(archives.has(path) ? undefined : await openUpstreamSource(path));
  }
  await mkdir(catalogDir, { recursive: true });
  await removeLeftovers(catalogDir, await currentTree(catalogDir));

  const stamp = `${new Date().toISOString().replace(/[-:.]/g, '').replace('T', '-').slice(0, 15)}-${randomBytes(3).toString('hex')}`;
  const staging = join(catalogDir, `${STAGING_PREFIX}${stamp}`);
  // Archives unpack beside the tree (same disk, not a possibly small tmpfs); a killed import's
  // leftovers carry the staging prefix and go with the next import.
  const unpackDirs: string[] = [];
  const tree = `${TREE_PREFIX}${stamp}`;
  let summary: TreeSummary;
  try {
    for (const [i, path] of from.entries()) {
      if (sources[i]) continue;
      const unpackDir = join(catalogDir, `${STAGING_PREFIX}${stamp}-archive-${i}`);
      unpackDirs.push(unpackDir);
      sources[i] = await openArchiveSource(path, unpackDir, archiveLimits);
    }
    await mkdir(staging);
    summary = await writeCatalogTree(staging, sources as UpstreamSource[], onProgress);
    await loadCatalog(staging);
    await rename(staging, join(catalogDir, tree));
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  } finally {
    for (const dir of unpackDirs) await rm(dir, { recursive: true, force: true });
  }
  const link = join(catalogDir, `.${CURRENT_LINK}-${stamp}`);
  await symlink(tree, link);
  await rename(link, join(catalogDir, CURRENT_LINK));
  await syncDirectory(catalogDir);
  await removeLeftovers(catalogDir, tree);
  return { ...summary, tree: join(catalogDir, tree) };
}

async function currentTree(catalogDir: string): Promise<string | undefined> {
  return readlink(join(catalogDir, CURRENT_LINK)).catch(() => undefined);
}

/** Every tree but the current one, unfinished staging dirs and stray link temps. */
async function removeLeftovers(catalogDir: string, keep: string | undefined): Promise<void> {
  for (const name of await readdir(catalogDir)) {
    const stale = (name.startsWith(TREE_PREFIX) && name !== keep) || name.startsWith(STAGING_PREFIX) || name.startsWith(`.${CURRENT_LINK}-`);
    if (stale) await rm(join(catalogDir, name), { recursive: true, force: true });
  }
}
