import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog, CURRENT_LINK, importCatalog, loadCatalog, resolveCatalogRoot } from '../src/index.js';
import { EMBEDDED_SOURCE, requireUpstream, tempDir, UPSTREAM_TREE, type TempDir } from './fixtures.js';

const CHILD = fileURLToPath(new URL('./import-child.mjs', import.meta.url));

/**
 * Import the real upstream tree in a child and SIGKILL it `delayMs` after it reports `step`
 * (e.g. "boards 1040/1040": every body written, the manifest, indexes and swap still to come).
 */
async function importKilledAt(catalogDir: string, step: string, delayMs: number): Promise<{ killedMidway: boolean }> {
  const child = spawn(process.execPath, [CHILD, catalogDir, UPSTREAM_TREE], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    if (line === step) setTimeout(() => child.kill('SIGKILL'), delayMs);
  });
  return { killedMidway: (await exited) === 'SIGKILL' };
}

let tmp: TempDir;
beforeEach(async () => {
  tmp = await tempDir();
});
afterEach(async () => {
  await tmp.dispose();
});

describe('an import killed with SIGKILL at any point', () => {
  it('leaves the previous catalog current, complete and loadable; the next import cleans up', async () => {
    requireUpstream();
    const catalogDir = join(tmp.path, 'catalog');
    await importCatalog(catalogDir, [EMBEDDED_SOURCE]);
    const previous = (await loadCatalog(await resolveCatalogRoot(catalogDir))).manifestSha256;

    let killedMidway = 0;
    const moments: [string, number][] = [
      ['components 50/936', 0],
      ['automations 500/1084', 0],
      ['boards 1000/1040', 0],
      ['boards 1040/1040', 0],
      ['boards 1040/1040', 25],
      ['boards 1040/1040', 80],
      ['boards 1040/1040', 200],
    ];
    for (const [step, delayMs] of moments) {
      if ((await importKilledAt(catalogDir, step, delayMs)).killedMidway) killedMidway++;
      // Whatever the moment, `current` names one complete tree: the previous one or the new one.
      const root = await resolveCatalogRoot(catalogDir);
      const loaded = await loadCatalog(root);
      if (loaded.manifestSha256 !== previous) expect(loaded.components.entries).toHaveLength(936);
      const catalog = await Catalog.open(root, { maxEntries: 8, maxBytes: 1 << 20 });
      const { total } = JSON.parse((await catalog.getComponents({})).json);
      expect(total).toBe(loaded.components.entries.length);
      const firstId = loaded.components.entries[0]!.id;
      expect(JSON.parse((await catalog.getComponentBodies({ componentIds: [firstId] })).json).components).toHaveLength(1);
    }
    // The kills on a body step always land mid-import; the delayed ones may land after the swap.
    expect(killedMidway).toBeGreaterThanOrEqual(4);

    // Leftovers of killed imports (staging dirs, trees, link temps) are removed by the next import.
    await importCatalog(catalogDir, [EMBEDDED_SOURCE]);
    const names = await readdir(catalogDir);
    expect(names).toHaveLength(2);
    expect(names.filter((n) => n !== CURRENT_LINK)).toEqual([expect.stringMatching(/^tree-/)]);
  }, 180_000);
});
