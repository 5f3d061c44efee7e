import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { catalogPb } from '@kiln/contracts';
import { Catalog, DEFAULT_PAGE_SIZE, EMBEDDED_CATALOG_DIR, importCatalog, MAX_PAGE_SIZE, resolveCatalogRoot } from '../src/index.js';
import { requireUpstream, tempDir, UPSTREAM_TREE, type TempDir } from './fixtures.js';

const LIMITS = { maxEntries: 128, maxBytes: 8 * 1024 * 1024 };
type Json = Record<string, unknown> & { id: string };
const parse = (result: catalogPb.JsonResult) => JSON.parse(result.json) as Record<string, Json[] & number> & Record<string, unknown>;
const ids = (list: Json[]) => list.map((e) => e.id);

describe('queries on the shipped catalog', () => {
  let catalog: Catalog;
  beforeAll(async () => {
    catalog = await Catalog.open(await resolveCatalogRoot(EMBEDDED_CATALOG_DIR), LIMITS);
  });

  it('get_components lists slim entries (no config_entries) with the total', async () => {
    const { components, total } = parse(await catalog.getComponents({}));
    expect(total).toBe(14);
    expect(components).toHaveLength(14);
    for (const c of components) expect(c).not.toHaveProperty('config_entries');
  });

  it('filters: category, exclude_category, platform, board_id, provides', async () => {
    expect(ids(parse(await catalog.getComponents({ category: 'sensor' })).components)).toEqual(['sensor.dht', 'sensor.adc', 'sensor.bme280_i2c']);
    const excluded = parse(await catalog.getComponents({ excludeCategory: ['core', 'sensor'] }));
    expect(excluded.total).toBe(14 - 4 - 3);
    expect(excluded.components.some((c) => c['category'] === 'core' || c['category'] === 'sensor')).toBe(false);
    // Platform-bound components appear only on their platform; the rest everywhere.
    const esp8266 = ids(parse(await catalog.getComponents({ platform: 'esp8266' })).components);
    expect(esp8266).toContain('output.esp8266_pwm');
    expect(esp8266).not.toContain('output.ledc');
    // A catalog board id scopes to its platform (sonoff_basic is an esp8266 board).
    expect(ids(parse(await catalog.getComponents({ boardId: 'sonoff_basic' })).components).sort()).toEqual([...esp8266].sort());
    expect(ids(parse(await catalog.getComponents({ provides: 'voltage_sampler' })).components)).toEqual(['sensor.adc']);
  });

  it('for a board, the components its featured components use come first, marked featured (index only)', async () => {
    const { components, total } = parse(await catalog.getComponents({ boardId: 'sonoff_basic' }));
    expect(ids(components.slice(0, 2))).toEqual(['binary_sensor.gpio', 'switch.gpio']); // catalog order among themselves
    expect(components.slice(0, 2).every((c) => c['featured'] === true)).toBe(true);
    expect(components.slice(2).some((c) => 'featured' in c)).toBe(false);
    expect(total).toBe(parse(await catalog.getComponents({ platform: 'esp8266' })).total);
    // Filters still apply; the flag is per board.
    expect(ids(parse(await catalog.getComponents({ boardId: 'sonoff_basic', category: 'switch' })).components)).toEqual(['switch.gpio']);
    expect(parse(await catalog.getComponents({ boardId: 'd1_mini' })).components.some((c) => 'featured' in c)).toBe(false);
    // No bodies were read to answer it.
    expect(catalog.cacheStats().diskReads).toBe(0);
  });

  it('search ranks id/name matches before description matches; every term must match', async () => {
    const { components } = parse(await catalog.getComponents({ query: 'wi-fi' }));
    expect(ids(components)[0]).toBe('wifi'); // name "Wi-Fi" is an exact match
    expect(ids(parse(await catalog.getComponents({ query: 'TEMPERATURE humidity' })).components)).toEqual(['sensor.dht', 'sensor.bme280_i2c']);
    expect(parse(await catalog.getComponents({ query: 'no such thing anywhere' })).total).toBe(0);
    // Regex metacharacters are plain text.
    expect(parse(await catalog.getComponents({ query: '(.*' })).total).toBe(0);
  });

  it('pagination: offset/limit windows, past the end, limit bounds', async () => {
    const all = ids(parse(await catalog.getComponents({})).components);
    const page2 = parse(await catalog.getComponents({ offset: 5, limit: 5 }));
    expect(ids(page2.components)).toEqual(all.slice(5, 10));
    expect(page2.total).toBe(14);
    expect(ids(parse(await catalog.getComponents({ offset: 12, limit: 5 })).components)).toEqual(all.slice(12));
    const past = parse(await catalog.getComponents({ offset: 100 }));
    expect(past.components).toEqual([]);
    expect(past.total).toBe(14);
    await expect(catalog.getComponents({ limit: MAX_PAGE_SIZE + 1 })).rejects.toMatchObject({ code: 'invalid_args', message: expect.stringMatching(/^limit: must be at most 1000 \(got 1001\)/) });
  });

  it('unknown board ids are not_found; a platform that contradicts the board is invalid', async () => {
    await expect(catalog.getComponents({ boardId: 'nope' })).rejects.toMatchObject({ code: 'not_found', message: 'board_id: no board "nope" in the catalog' });
    await expect(catalog.getCategories({ boardId: 'nope' })).rejects.toMatchObject({ code: 'not_found' });
    await expect(catalog.getBoard({ boardId: 'nope' })).rejects.toMatchObject({ code: 'not_found' });
    await expect(catalog.getComponents({ platform: 'esp32', boardId: 'd1_mini' })).rejects.toMatchObject({
      code: 'invalid_args',
      message: expect.stringMatching(/platform: "esp32" is not the platform of board "d1_mini" \(esp8266\)/),
    });
  });

  it('get_component_bodies hydrates bodies in the order asked; missing ids omitted; platform scope', async () => {
    const { components } = parse(await catalog.getComponentBodies({ componentIds: ['switch.gpio', 'nope', 'wifi', 'switch.gpio'] }));
    expect(ids(components)).toEqual(['switch.gpio', 'wifi']);
    expect(components[0]!['config_entries']).toEqual(expect.arrayContaining([expect.objectContaining({ key: 'pin', type: 'pin' })]));
    expect(ids(parse(await catalog.getComponentBodies({ componentIds: ['output.ledc', 'output.esp8266_pwm'], platform: 'esp32' })).components)).toEqual(['output.ledc']);
  });

  it('get_categories counts per category, optionally for a board', async () => {
    const all = parse(await catalog.getCategories({})).categories as unknown as { category: string; count: number }[];
    expect(all).toContainEqual({ category: 'sensor', count: 3 });
    expect(all).toContainEqual({ category: 'output', count: 2 });
    expect(all.map((c) => c.category)).toEqual([...all.map((c) => c.category)].sort());
    const esp32 = parse(await catalog.getCategories({ boardId: 'esp32dev' })).categories as unknown as { category: string; count: number }[];
    expect(esp32).toContainEqual({ category: 'output', count: 1 });
  });

  it('get_integration_docs lists every component with a docs link', async () => {
    const { docs } = parse(await catalog.getIntegrationDocs({}));
    expect(docs).toHaveLength(14);
    expect(docs).toContainEqual({ id: 'i2c', name: 'I²C Bus', category: 'bus', docs_url: 'https://esphome.io/components/i2c' });
  });

  it('boards: filters, search, one board with requires_wifi, compatible boards', async () => {
    expect(parse(await catalog.getBoards({})).total).toBe(12);
    expect(ids(parse(await catalog.getBoards({ platform: 'rp2040' })).boards)).toEqual(['rpipicow', 'rpipico']);
    expect(ids(parse(await catalog.getBoards({ variant: 'ESP32C3' })).boards)).toEqual(['esp32-c3-devkitm-1', 'esp32-c3-devkitm-1-clone']);
    expect(ids(parse(await catalog.getBoards({ mcu: 'rp2040', tag: 'dev-kit' })).boards)).toEqual(['rpipicow', 'rpipico']);
    expect(ids(parse(await catalog.getBoards({ tag: 'relay' })).boards)).toEqual(['sonoff_basic']);
    expect(ids(parse(await catalog.getBoards({ query: 'itead' })).boards)).toEqual(['sonoff_basic']); // manufacturer
    expect(ids(parse(await catalog.getBoards({ limit: 2, offset: 1 })).boards)).toHaveLength(2);

    const board = parse(await catalog.getBoard({ boardId: 'sonoff_basic' }));
    expect(board).toMatchObject({ id: 'sonoff_basic', requires_wifi: true, esphome: { platform: 'esp8266', board: 'esp01_1m' } });
    expect(board['pins']).toHaveLength(3);
    // Own network (Thread) → Wi-Fi optional; no radio at all → not required either.
    expect(parse(await catalog.getBoard({ boardId: 'esp32-c6-devkitc-1' }))['requires_wifi']).toBe(false);
    expect(parse(await catalog.getBoard({ boardId: 'esp32-h2-devkitm-1' }))['requires_wifi']).toBe(false);
    expect(parse(await catalog.getBoard({ boardId: 'rpipico' }))['requires_wifi']).toBe(false);

    expect(ids(parse(await catalog.getCompatibleBoards({ boardId: 'esp32-c3-devkitm-1' })).boards)).toEqual(['esp32-c3-devkitm-1', 'esp32-c3-devkitm-1-clone']);
    expect(parse(await catalog.getCompatibleBoards({ boardId: 'nope' }))).toEqual({ boards: [], total: 0 });
  });

  it('automations: each kind from the index, core entries first; bodies per kind', async () => {
    const actions = parse(await catalog.getAutomations({ kind: 2 })).actions;
    expect(ids(actions.slice(0, 2)).sort()).toEqual(['delay', 'if']);
    for (const a of actions) expect(a).not.toHaveProperty('config_entries');
    expect(ids(parse(await catalog.getAutomations({ kind: 1 })).triggers)[0]).toBe('on_boot');
    expect(parse(await catalog.getAutomations({ kind: 4 })).filters).toHaveLength(3);
    expect(parse(await catalog.getAutomations({ kind: 5 })).light_effects).toHaveLength(2);
    expect(ids(parse(await catalog.getAutomations({ kind: 3 })).conditions)[0]).toBe('and');
    await expect(catalog.getAutomations({ kind: 0 })).rejects.toMatchObject({ code: 'invalid_args' });
    await expect(catalog.getAutomations({ kind: 1, boardId: 'nope' })).rejects.toMatchObject({ code: 'not_found' });

    const bodies = parse(await catalog.getAutomationBodies({ ids: ['switch.turn_on', 'pulse', 'nope'] }));
    expect(ids(bodies.actions)).toEqual(['switch.turn_on']);
    expect(ids(bodies.light_effects)).toEqual(['pulse']);
    expect(bodies.triggers).toEqual([]);
    expect(bodies.actions[0]!['config_entries']).toHaveLength(1);
    expect(Object.keys(parse(await catalog.getAutomationBodies({ ids: ['pulse'], kind: 5 })))).toEqual(['light_effects']);
  });

  it('pin registry modes and info', async () => {
    expect(parse(await catalog.getPinRegistryModes({}))['modes']).toMatchObject({ pcf8574: ['input', 'output'] });
    const info = parse(await catalog.getInfo({}));
    expect(info['counts']).toMatchObject({ components: 14, boards: 12, actions: 6 });
  });
});

describe('queries on the imported upstream catalog', () => {
  let tmp: TempDir;
  let catalog: Catalog;
  beforeAll(async () => {
    requireUpstream();
    tmp = await tempDir();
    await importCatalog(join(tmp.path, 'catalog'), [UPSTREAM_TREE]);
    catalog = await Catalog.open(await resolveCatalogRoot(join(tmp.path, 'catalog')), LIMITS);
  }, 120_000);
  afterAll(async () => {
    await tmp?.dispose();
  });

  it('lists 936 components in pages of the default size', async () => {
    const first = parse(await catalog.getComponents({}));
    expect(first.total).toBe(936);
    expect(first.components).toHaveLength(DEFAULT_PAGE_SIZE);
    const last = parse(await catalog.getComponents({ offset: 900, limit: 100 }));
    expect(last.components).toHaveLength(36);
  });

  it('filters match upstream data', async () => {
    expect(parse(await catalog.getComponents({ category: 'sensor' })).total).toBe(285);
    expect(parse(await catalog.getComponents({ category: 'sensor', provides: 'sensor', limit: 1 })).total).toBeGreaterThan(150);
    const esp8266 = parse(await catalog.getComponents({ platform: 'esp8266', limit: 1000 }));
    expect(ids(esp8266.components)).not.toContain('audio'); // esp32-only
    expect(esp8266.total).toBe(936 - 56 + 3); // 56 platform-bound components, 3 of them run on esp8266
    const categories = parse(await catalog.getCategories({})).categories as unknown as { count: number }[];
    expect(categories.reduce((n, c) => n + c.count, 0)).toBe(936);
    // Name prefix matches ("Bme280 I²C") rank before matches inside the name or description.
    const search = ids(parse(await catalog.getComponents({ query: 'bme280' })).components);
    expect(search).toEqual(['sensor.bme280_i2c', 'sensor.bme280_spi']);
    const i2c = ids(parse(await catalog.getComponents({ query: 'i2c', limit: 1000 })).components);
    expect(i2c[0]).toBe('i2c'); // the exact id first, then prefixes, then the rest
    expect(i2c.length).toBeGreaterThan(50);
    expect(ids(parse(await catalog.getComponents({ query: 'dallas' })).components)).toEqual(['sensor.dallas_temp']);
    expect(parse(await catalog.getBoards({ platform: 'esp32' })).total).toBe(513);
    expect(parse(await catalog.getBoards({ mcu: 'bk7231' })).total).toBe(117);
    expect(parse(await catalog.getBoards({ tag: 'relay', limit: 1 })).total).toBeGreaterThanOrEqual(179);
  });

  it("a board's featured components lead its component list", async () => {
    const { components } = parse(await catalog.getComponents({ boardId: 'apollo-esk-1', limit: 20 }));
    const featured = components.filter((c) => c['featured'] === true);
    expect(ids(featured).sort()).toEqual(['binary_sensor.gpio', 'i2c', 'light.esp32_rmt_led_strip', 'output.ledc', 'rtttl', 'sensor.aht10', 'sensor.max17043', 'switch.gpio']);
    expect(ids(components.slice(0, featured.length)).sort()).toEqual(ids(featured).sort());
  });

  it('the largest body (sensor.dsmr, 1.7 MB) and a board with featured components', async () => {
    const { components } = parse(await catalog.getComponentBodies({ componentIds: ['sensor.dsmr'] }));
    expect(components[0]!['config_entries']).not.toHaveLength(0);
    const board = parse(await catalog.getBoard({ boardId: 'apollo-esk-1' }));
    expect(board['featured_components']).not.toHaveLength(0);
    expect(board['requires_wifi']).toBe(false); // Thread on board
    expect(parse(await catalog.getCompatibleBoards({ boardId: 'esp32dev' })).total).toBeGreaterThan(1);
  });

  it('automation ids shared between kinds are told apart by kind', async () => {
    const bodies = parse(await catalog.getAutomationBodies({ ids: ['lambda'] }));
    expect(ids(bodies.actions)).toEqual(['lambda']);
    expect(ids(bodies.conditions)).toEqual(['lambda']);
    const triggers = parse(await catalog.getAutomations({ kind: 1 })).triggers;
    expect(triggers).toHaveLength(408);
    expect(ids(triggers.slice(0, 3)).sort()).toEqual(['on_boot', 'on_loop', 'on_shutdown']);
  });
});
