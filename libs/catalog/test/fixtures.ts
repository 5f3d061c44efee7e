import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Real upstream data (never copied into the repository). */
export const UPSTREAM = fileURLToPath(new URL('../../../../shared/data/esphome-catalog', import.meta.url));
export const UPSTREAM_TREE = join(UPSTREAM, 'definitions');
export const UPSTREAM_MONOLITHIC = join(UPSTREAM, 'monolithic');
export const UPSTREAM_LEGACY_BOARDS = join(UPSTREAM, 'legacy_boards.json');
/** The authored source of the catalog Kiln ships. */
export const EMBEDDED_SOURCE = fileURLToPath(new URL('../../../definitions/source', import.meta.url));

export function requireUpstream(): void {
  if (!existsSync(UPSTREAM_TREE)) throw new Error(`upstream catalog data not found at ${UPSTREAM} (../shared beside the checkout)`);
}

export interface TempDir {
  path: string;
  dispose(): Promise<void>;
}

export async function tempDir(prefix = 'kiln-catalog-'): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, dispose: () => rm(path, { recursive: true, force: true }) };
}

const entry = (key: string) => ({ key, type: 'string', label: key });

/** A tiny upstream split tree (the shape of upstream's definitions/), with hooks to break it. */
export async function writeTinySplitTree(
  root: string,
  options: { mutateComponent?: (c: Record<string, unknown>) => void; skipBody?: string; bodyIdOverride?: [string, string] } = {},
): Promise<void> {
  const components = [
    { id: 'wifi', name: 'WiFi', description: 'Network', category: 'core', docs_url: 'https://esphome.io/components/wifi' },
    { id: 'sensor.dht', name: 'DHT', description: 'Temperature and humidity', category: 'sensor', multi_conf: true, provides: ['sensor'] },
    { id: 'output.ledc', name: 'LEDC', description: 'ESP32 PWM', category: 'output', supported_platforms: ['esp32'] },
  ];
  if (options.mutateComponent) options.mutateComponent(components[1]!);
  const automations = {
    esphome_schema_version: 't1',
    triggers: [{ id: 'on_boot', name: 'On Boot', applies_to: [], is_device_level: true }],
    actions: [
      { id: 'switch.toggle', name: 'Toggle', domain: 'switch' },
      { id: 'delay', name: 'Delay', domain: 'core' },
    ],
    conditions: [{ id: 'and', name: 'And', domain: 'core' }],
    filters: [{ id: 'offset', name: 'Offset', applies_to: ['sensor'] }],
    light_effects: [],
  };
  const boards = [
    { id: 'esp32dev', name: 'ESP32 Dev', esphome: { board: 'esp32dev', platform: 'esp32', variant: 'esp32' }, tags: ['dev-kit'] },
    { id: 'd1_mini', name: 'D1 Mini', esphome: { board: 'd1_mini', platform: 'esp8266' } },
  ];
  const write = (rel: string, value: unknown) => writeFile(join(root, rel), JSON.stringify(value));
  for (const dir of ['components', 'board_bodies', ...['triggers', 'actions', 'conditions', 'filters', 'light_effects'].map((k) => `automations/${k}`)]) {
    await mkdir(join(root, dir), { recursive: true });
  }
  await write('components.index.json', { esphome_schema_version: 't1', components });
  for (const c of components) {
    if (c.id === options.skipBody) continue;
    const id = options.bodyIdOverride?.[0] === c.id ? options.bodyIdOverride[1] : c.id;
    await write(`components/${c.id}.json`, { ...c, id, config_entries: [entry('name')] });
  }
  await write('automations.index.json', automations);
  for (const kind of ['triggers', 'actions', 'conditions', 'filters', 'light_effects'] as const) {
    for (const a of automations[kind]) await write(`automations/${kind}/${a.id}.json`, { ...a, config_entries: [entry('id')] });
  }
  await write('boards.index.json', { esphome_version: 't1', boards });
  for (const b of boards) await write(`board_bodies/${b.id}.json`, { ...b, pins: [{ gpio: 2, label: 'LED' }] });
}
