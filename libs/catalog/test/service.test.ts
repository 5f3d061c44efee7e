import { mkdir, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connectNatsBus, createInProcessBus, type Bus } from '@kiln/bus';
import { natsOrSkip as connectTestNats, NATS_TEST_URL as NATS_URL, testNatsPrefix } from '@kiln/bus/testing';
import { loadConfig } from '@kiln/config';
import { busClient, catalogPb } from '@kiln/contracts';
import { createRootLogger, memoryDestination } from '@kiln/logging';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCatalogService, EMBEDDED_CATALOG_DIR, importCatalog, importedCatalogDir, openUpstreamSource, writeCatalogTree } from '../src/index.js';
import { EMBEDDED_SOURCE, tempDir, writeTinySplitTree, type TempDir } from './fixtures.js';

/** A namespace of its own on the shared server: other test runs may serve the same subjects. */
const PREFIX = testNatsPrefix();
const natsOrSkip = () => connectTestNats(PREFIX);

let tmp: TempDir;
beforeEach(async () => {
  tmp = await tempDir();
});
afterEach(async () => {
  await tmp.dispose();
});

async function service(bus: Bus, settings: Record<string, string> = {}, logs?: ReturnType<typeof memoryDestination>) {
  const config = await loadConfig({
    env: { HOME: '/nonexistent' },
    flags: [
      { path: 'dataDir', value: join(tmp.path, 'data'), flag: '--data-dir' },
      ...Object.entries(settings).map(([path, value]) => ({ path, value, flag: `--set ${path}` })),
    ],
  });
  const logger = await createRootLogger(logs ? { level: 'info', pretty: false, destination: logs } : { level: 'silent', pretty: false });
  return createCatalogService({ name: 'catalog', bus, config, logger, fail: () => undefined });
}

describe('catalog service', () => {
  for (const transport of ['in-process bus', 'NATS bus'] as const) {
    it(`answers every query over the ${transport} with what the catalog itself answers; errors keep their code`, async () => {
      const serverBus = transport === 'NATS bus' ? await natsOrSkip() : createInProcessBus();
      if (!serverBus) return;
      const clientBus = transport === 'NATS bus' ? await connectNatsBus({ servers: NATS_URL, prefix: PREFIX }) : serverBus;
      const svc = await service(serverBus);
      await svc.start();
      // The responders must have reached the server before another connection asks.
      await serverBus.flush();
      try {
        const client = busClient(clientBus, catalogPb.CatalogServiceDefinition);
        const direct = svc.catalog!;
        expect((await client.getComponents({ query: 'sensor', limit: 2 })).json).toBe((await direct.getComponents({ query: 'sensor', limit: 2 })).json);
        expect((await client.getComponentBodies({ componentIds: ['wifi'] })).json).toBe((await direct.getComponentBodies({ componentIds: ['wifi'] })).json);
        expect((await client.getCategories({ boardId: 'd1_mini' })).json).toBe((await direct.getCategories({ boardId: 'd1_mini' })).json);
        expect((await client.getBoards({ platform: 'esp32' })).json).toBe((await direct.getBoards({ platform: 'esp32' })).json);
        expect(JSON.parse((await client.getBoard({ boardId: 'd1_mini' })).json)).toMatchObject({ id: 'd1_mini', requires_wifi: true });
        expect(JSON.parse((await client.getAutomations({ kind: 2 })).json).actions).toHaveLength(6);
        await expect(client.getBoard({ boardId: 'nope' })).rejects.toMatchObject({ code: 'not_found', message: 'board_id: no board "nope" in the catalog' });
        await expect(client.getComponents({ limit: 5000 })).rejects.toMatchObject({ code: 'invalid_args' });
        expect(svc.health()).toMatchObject({ ok: true, detail: { root: EMBEDDED_CATALOG_DIR } });
      } finally {
        await svc.stop();
        if (clientBus !== serverBus) await clientBus.close();
        await serverBus.close();
      }
    });
  }

  it('serves the shipped catalog, then the imported one once there is one, or the configured dir', async () => {
    const bus = createInProcessBus();
    const first = await service(bus);
    await first.start();
    expect(first.catalog!.root).toBe(EMBEDDED_CATALOG_DIR);
    await first.stop();

    const source = join(tmp.path, 'upstream');
    await writeTinySplitTree(source);
    const result = await importCatalog(importedCatalogDir(join(tmp.path, 'data')), [source]);
    const second = await service(bus);
    await second.start();
    expect(second.catalog!.root).toBe(result.tree);
    expect(second.catalog!.counts()).toMatchObject({ components: 3, boards: 2 });
    await second.stop();

    const third = await service(bus, { 'catalog.dir': EMBEDDED_CATALOG_DIR });
    await third.start();
    expect(third.catalog!.root).toBe(EMBEDDED_CATALOG_DIR);
    await third.stop();
    await bus.close();
  });

  it.each([
    ['a truncated body', 'components/sensor.dht.json', (file: string) => truncate(file, 40)],
    ['a missing body', 'boards/d1_mini.json', (file: string) => rm(file)],
    ['an index that is not JSON', 'components.index.json', (file: string) => writeFile(file, '{"header": {"format"')],
  ])('a broken imported catalog (%s) does not stop the service: the shipped one is served, with a warning naming the file', async (_label, rel, breakIt) => {
    const bus = createInProcessBus();
    const source = join(tmp.path, 'upstream');
    await writeTinySplitTree(source);
    const { tree } = await importCatalog(importedCatalogDir(join(tmp.path, 'data')), [source]);
    await breakIt(join(tree, rel));
    const logs = memoryDestination();
    const svc = await service(bus, {}, logs);
    await svc.start();
    try {
      expect(svc.catalog!.root).toBe(EMBEDDED_CATALOG_DIR);
      expect(svc.health()).toMatchObject({ ok: true, detail: { root: EMBEDDED_CATALOG_DIR, brokenRoot: tree, brokenProblem: expect.stringContaining(rel) } });
      expect(logs.records.filter((r) => r.level === 40)).toEqual([
        expect.objectContaining({ root: tree, file: join(tree, rel), msg: expect.stringMatching(/is broken .*serving the catalog shipped with Kiln instead; re-run `kiln catalog import`/) }),
      ]);
      const client = busClient(bus, catalogPb.CatalogServiceDefinition);
      expect(JSON.parse((await client.getBoard({ boardId: 'd1_mini' })).json)).toMatchObject({ id: 'd1_mini' });
    } finally {
      await svc.stop();
      await bus.close();
    }
  });

  it('a body corrupted in place (same size) fails only the request that reads it, naming the file; the service keeps answering', async () => {
    const bus = createInProcessBus();
    const source = join(tmp.path, 'upstream');
    await writeTinySplitTree(source);
    const { tree } = await importCatalog(importedCatalogDir(join(tmp.path, 'data')), [source]);
    const body = join(tree, 'components', 'sensor.dht.json');
    const bytes = await readFile(body);
    await writeFile(body, Buffer.from(bytes.toString('latin1').replace('DHT', 'XYZ'), 'latin1'));
    const svc = await service(bus);
    await svc.start();
    try {
      expect(svc.catalog!.root).toBe(tree);
      const client = busClient(bus, catalogPb.CatalogServiceDefinition);
      await expect(client.getComponentBodies({ componentIds: ['sensor.dht'] })).rejects.toMatchObject({
        code: 'failed_precondition',
        message: expect.stringContaining('components/sensor.dht.json does not have the content the manifest lists'),
      });
      expect(JSON.parse((await client.getComponentBodies({ componentIds: ['wifi'] })).json).components).toEqual([expect.objectContaining({ id: 'wifi' })]);
      expect(svc.health()).toMatchObject({ ok: true, detail: { root: tree } });
    } finally {
      await svc.stop();
      await bus.close();
    }
  });

  it('a broken configured catalog dir (catalog.dir) falls back to the shipped one the same way', async () => {
    const bus = createInProcessBus();
    const copy = join(tmp.path, 'shipped-copy');
    await writeCatalogTree(copy, [await openUpstreamSource(EMBEDDED_SOURCE)]);
    await rm(join(copy, 'components', 'wifi.json'));
    const svc = await service(bus, { 'catalog.dir': copy });
    await svc.start();
    expect(svc.catalog!.root).toBe(EMBEDDED_CATALOG_DIR);
    await svc.stop();
    await bus.close();
  });
});

describe('the shipped catalog', () => {
  it('is what its source generates (run `npm run catalog:embedded` after editing definitions/source)', async () => {
    const fresh = join(tmp.path, 'fresh');
    await mkdir(fresh);
    await writeCatalogTree(fresh, [await openUpstreamSource(EMBEDDED_SOURCE)]);
    const files = async (root: string): Promise<string[]> =>
      (await readdir(root, { recursive: true, withFileTypes: true })).filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name).slice(root.length + 1)).sort();
    const expected = await files(fresh);
    expect(await files(EMBEDDED_CATALOG_DIR)).toEqual(expected);
    for (const rel of expected) expect(await readFile(join(EMBEDDED_CATALOG_DIR, rel), 'utf8'), rel).toBe(await readFile(join(fresh, rel), 'utf8'));
  });
});
