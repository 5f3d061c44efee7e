import { readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog, CURRENT_LINK, importCatalog, loadCatalog, resolveCatalogRoot } from '../src/index.js';
import {
  EMBEDDED_SOURCE,
  requireUpstream,
  tempDir,
  UPSTREAM_LEGACY_BOARDS,
  UPSTREAM_MONOLITHIC,
  UPSTREAM_TREE,
  writeTinySplitTree,
  type TempDir,
} from './fixtures.js';

const LIMITS = { maxEntries: 128, maxBytes: 8 * 1024 * 1024 };

let tmp: TempDir;
beforeEach(async () => {
  tmp = await tempDir();
});
afterEach(async () => {
  await tmp.dispose();
});

async function currentManifest(catalogDir: string): Promise<string> {
  return (await loadCatalog(await resolveCatalogRoot(catalogDir))).manifestSha256;
}

describe('import of upstream data', () => {
  it('imports a split tree: counts, slim index, bodies and the current link', async () => {
    const source = join(tmp.path, 'src');
    await writeTinySplitTree(source);
    const progress: string[] = [];
    const result = await importCatalog(join(tmp.path, 'catalog'), [source], (p) => progress.push(`${p.section}:${p.done}/${p.total}`));
    expect(result.counts).toEqual({ components: 3, automations: 5, boards: 2 });
    expect(progress).toContain('components:3/3');
    expect(progress).toContain('boards:2/2');
    expect(await readlink(join(tmp.path, 'catalog', CURRENT_LINK))).toMatch(/^tree-/);
    const catalog = await Catalog.open(await resolveCatalogRoot(join(tmp.path, 'catalog')), LIMITS);
    const bodies = JSON.parse((await catalog.getComponentBodies({ componentIds: ['sensor.dht'] })).json);
    expect(bodies.components[0]).toMatchObject({ id: 'sensor.dht', config_entries: [{ key: 'name' }] });
  });

  it('imports the real upstream split tree (936 components, 1,084 automations, 1,040 boards)', async () => {
    requireUpstream();
    const result = await importCatalog(join(tmp.path, 'catalog'), [UPSTREAM_TREE]);
    expect(result.counts).toEqual({ components: 936, automations: 1084, boards: 1040 });
    const loaded = await loadCatalog(await resolveCatalogRoot(join(tmp.path, 'catalog')));
    expect(loaded.automations.actions.entries).toHaveLength(551);
    expect(loaded.meta.platform_capabilities).toHaveProperty('esp32_no_wifi_variants');
    // A body is upstream's body, unchanged.
    const upstream = JSON.parse(await readFile(join(UPSTREAM_TREE, 'components', 'sensor.dsmr.json'), 'utf8'));
    const ours = JSON.parse(await readFile(join(loaded.root, 'components', 'sensor.dsmr.json'), 'utf8'));
    expect(ours).toEqual(upstream);
  }, 120_000);

  it('imports the monolithic files (with the legacy boards file) to the same components', async () => {
    requireUpstream();
    const result = await importCatalog(join(tmp.path, 'mono'), [UPSTREAM_MONOLITHIC, UPSTREAM_LEGACY_BOARDS]);
    expect(result.counts).toEqual({ components: 936, automations: 1084, boards: 490 });
    const mono = await Catalog.open(await resolveCatalogRoot(join(tmp.path, 'mono')), LIMITS);
    const { components, total } = JSON.parse((await mono.getComponents({ category: 'sensor', limit: 5 })).json);
    expect(total).toBe(285);
    expect(components[0]).not.toHaveProperty('config_entries');
    const body = JSON.parse((await mono.getComponentBodies({ componentIds: ['switch.gpio'] })).json).components[0];
    const upstream = JSON.parse(await readFile(join(UPSTREAM_TREE, 'components', 'switch.gpio.json'), 'utf8'));
    expect(body.config_entries).toEqual(upstream.config_entries);
  }, 120_000);

  it('the shipped catalog source imports and every section is there', async () => {
    const result = await importCatalog(join(tmp.path, 'catalog'), [EMBEDDED_SOURCE]);
    expect(result.counts.components).toBeGreaterThanOrEqual(12);
    expect(result.counts.boards).toBeGreaterThanOrEqual(12);
    expect(result.counts.automations).toBeGreaterThanOrEqual(12);
  });
});

describe('bad input is refused, naming the entry, and the previous catalog stays', () => {
  const cases: [string, Parameters<typeof writeTinySplitTree>[1], RegExp][] = [
    ['a field of the wrong type', { mutateComponent: (c) => (c['category'] = 42) }, /components\.index\.json: components\[1\] \("sensor\.dht"\): category: .*got 42/],
    ['an id with a path separator', { mutateComponent: (c) => (c['id'] = '../evil') }, /components\[1\] \("\.\.\/evil"\): id: must be 1-128 characters/],
    ['a missing required field', { mutateComponent: (c) => delete c['name'] }, /components\[1\] \("sensor\.dht"\): name: is missing/],
    ['a body file missing', { skipBody: 'output.ledc' }, /components\[2\] \("output\.ledc"\): its body .*output\.ledc\.json is missing/],
    ['a body whose id differs', { bodyIdOverride: ['wifi', 'wlan'] }, /wifi\.json: body id "wlan" does not match the index entry "wifi"/],
  ];
  for (const [name, breakIt, message] of cases) {
    it(name, async () => {
      const catalogDir = join(tmp.path, 'catalog');
      await importCatalog(catalogDir, [EMBEDDED_SOURCE]);
      const before = await currentManifest(catalogDir);
      const source = join(tmp.path, 'bad');
      await writeTinySplitTree(source, breakIt);
      await expect(importCatalog(catalogDir, [source])).rejects.toThrow(message);
      expect(await currentManifest(catalogDir)).toBe(before);
      // Nothing half-written is left beside it.
      expect((await readdir(catalogDir)).filter((n) => n !== CURRENT_LINK)).toHaveLength(1);
    });
  }

  it('invalid JSON names the file', async () => {
    const source = join(tmp.path, 'bad');
    await writeTinySplitTree(source);
    await writeFile(join(source, 'boards.index.json'), '{"boards": [');
    await expect(importCatalog(join(tmp.path, 'catalog'), [source])).rejects.toThrow(/boards\.index\.json: not valid JSON/);
  });

  it('a missing section and a section given twice are refused', async () => {
    await expect(importCatalog(join(tmp.path, 'c1'), [join(EMBEDDED_SOURCE, 'components.json')])).rejects.toThrow(/no source for automations, boards/);
    await expect(importCatalog(join(tmp.path, 'c2'), [EMBEDDED_SOURCE, join(EMBEDDED_SOURCE, 'boards.json')])).rejects.toThrow(/boards given twice/);
    await expect(importCatalog(join(tmp.path, 'c3'), [join(tmp.path, 'nope')])).rejects.toThrow(/--from .*nope: no such file or directory/);
  });
});

describe('the runtime refuses a catalog that does not match its manifest', () => {
  let root: string;
  beforeEach(async () => {
    await importCatalog(join(tmp.path, 'catalog'), [EMBEDDED_SOURCE]);
    root = await resolveCatalogRoot(join(tmp.path, 'catalog'));
  });

  it('a body removed', async () => {
    await rm(join(root, 'components', 'wifi.json'));
    await expect(Catalog.open(root, LIMITS)).rejects.toThrow(/does not match its manifest: components\/wifi\.json is missing/);
  });

  it('a body of another size', async () => {
    await writeFile(join(root, 'boards', 'd1_mini.json'), '{}');
    await expect(Catalog.open(root, LIMITS)).rejects.toThrow(/boards\/d1_mini\.json is 2 bytes, the manifest says \d+/);
  });

  it('a body of the same size with other content is refused when read', async () => {
    const path = join(root, 'components', 'wifi.json');
    const text = await readFile(path, 'utf8');
    await writeFile(path, text.replace('Wi-Fi', 'Wx-Fx'));
    const catalog = await Catalog.open(root, LIMITS);
    await expect(catalog.getComponentBodies({ componentIds: ['wifi'] })).rejects.toMatchObject({
      code: 'failed_precondition',
      message: expect.stringMatching(/components\/wifi\.json does not have the content the manifest lists/),
    });
  });

  it('an index from another import (manifest hash differs)', async () => {
    const manifestPath = join(root, 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
    await writeFile(manifestPath, JSON.stringify({ ...manifest, files: { ...manifest.files } }) + ' ');
    await expect(Catalog.open(root, LIMITS)).rejects.toThrow(/components\.index\.json was written for manifest .* \(a torn or mixed import\)/);
  });

  it('a tree whose indexes were never written (an import cut short)', async () => {
    await rm(join(root, 'boards.index.json'));
    await expect(Catalog.open(root, LIMITS)).rejects.toThrow(/boards\.index\.json cannot be read \(ENOENT\)/);
  });

  it('another schema version', async () => {
    const path = join(root, 'meta.json');
    await writeFile(path, (await readFile(path, 'utf8')).replace('"schema_version":1', '"schema_version":99'));
    await expect(Catalog.open(root, LIMITS)).rejects.toThrow(/meta\.json has schema version 99; this Kiln reads version 1/);
  });
});
