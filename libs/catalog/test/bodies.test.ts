import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog, importCatalog, loadCatalog, resolveCatalogRoot } from '../src/index.js';
import { BodyCache } from '../src/runtime/bodies.js';
import { requireUpstream, tempDir, UPSTREAM_TREE, type TempDir } from './fixtures.js';

let tmp: TempDir;
let root: string;
beforeAll(async () => {
  requireUpstream();
  tmp = await tempDir();
  await importCatalog(join(tmp.path, 'catalog'), [UPSTREAM_TREE]);
  root = await resolveCatalogRoot(join(tmp.path, 'catalog'));
}, 120_000);
afterAll(async () => {
  await tmp?.dispose();
});

async function bodyOf(catalog: Catalog, id: string) {
  const [body] = JSON.parse((await catalog.getComponentBodies({ componentIds: [id] })).json).components;
  expect(body?.id).toBe(id);
  return body;
}

/** The `n` largest component bodies of the tree. */
async function largestComponents(n: number): Promise<string[]> {
  const dir = join(root, 'components');
  const sized = await Promise.all((await readdir(dir)).map(async (f) => ({ id: f.replace(/\.json$/, ''), size: (await stat(join(dir, f))).size })));
  return sized.sort((a, b) => b.size - a.size).slice(0, n).map((s) => s.id);
}

describe('body cache (LRU by count and by size)', () => {
  it('serves warm bodies from memory and evicts the least recently used past the count bound', async () => {
    const catalog = await Catalog.open(root, { maxEntries: 3, maxBytes: 64 * 1024 * 1024 });
    for (const id of ['wifi', 'api', 'logger']) await bodyOf(catalog, id);
    expect(catalog.cacheStats()).toMatchObject({ diskReads: 3, entries: 3 });
    await bodyOf(catalog, 'wifi'); // hit: wifi becomes most recent
    expect(catalog.cacheStats()).toMatchObject({ diskReads: 3, hits: 1 });
    await bodyOf(catalog, 'ota'); // evicts api (least recent)
    expect(catalog.cacheStats().entries).toBe(3);
    await bodyOf(catalog, 'wifi');
    expect(catalog.cacheStats().diskReads).toBe(4);
    await bodyOf(catalog, 'api'); // was evicted: read again
    expect(catalog.cacheStats().diskReads).toBe(5);
  });

  it('the size bound holds whatever the count: big bodies push out others', async () => {
    const maxBytes = 2 * 1024 * 1024;
    const catalog = await Catalog.open(root, { maxEntries: 128, maxBytes });
    // The largest upstream bodies (sensor.dsmr 1.7 MB first).
    const big = await largestComponents(5);
    expect(big[0]).toBe('sensor.dsmr');
    for (const id of big) await bodyOf(catalog, id);
    const stats = catalog.cacheStats();
    expect(stats.bytes).toBeLessThanOrEqual(maxBytes);
    expect(stats.entries).toBeLessThan(big.length);
    // A body larger than the whole bound is served but not kept.
    const tiny = await Catalog.open(root, { maxEntries: 128, maxBytes: 64 * 1024 });
    expect((await bodyOf(tiny, 'sensor.dsmr')).id).toBe('sensor.dsmr');
    expect(tiny.cacheStats().bytes).toBeLessThanOrEqual(64 * 1024);
  });

  it('concurrent requests for the same cold body read it once', async () => {
    const catalog = await Catalog.open(root, { maxEntries: 128, maxBytes: 8 * 1024 * 1024 });
    const results = await Promise.all(Array.from({ length: 20 }, () => bodyOf(catalog, 'sensor.dsmr')));
    expect(new Set(results.map((r) => r.id))).toEqual(new Set(['sensor.dsmr']));
    expect(catalog.cacheStats().diskReads).toBe(1);
    // One request naming a body several times reads it once too.
    await catalog.getComponentBodies({ componentIds: ['api', 'api', 'api'] });
    expect(catalog.cacheStats().diskReads).toBe(2);
  });

  it('a body whose content changed on disk is refused, not cached', async () => {
    const loaded = await loadCatalog(root);
    const cache = new BodyCache(root, { maxEntries: 8, maxBytes: 1 << 20 });
    const rel = loaded.components.relPath('wifi');
    const path = join(root, rel);
    const original = await readFile(path);
    await writeFile(path, Buffer.from(original.toString('latin1').replace('"wifi"', '"wxfx"'), 'latin1'));
    try {
      await expect(cache.get(rel, loaded.components.digest('wifi')!)).rejects.toMatchObject({ code: 'failed_precondition' });
      expect(cache.stats().entries).toBe(0);
    } finally {
      await writeFile(path, original);
    }
    expect((await cache.get(rel, loaded.components.digest('wifi')!)).equals(original)).toBe(true);
  });
});
