import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { KilnError, removeBuildOutputs, resolveBuildPaths } from '@kiln/core';
import { DeviceRegistry, type DeviceEvent } from '../src/index.js';

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function tempRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'kiln-devices-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  return root;
}

async function setup(files: Record<string, string> = {}): Promise<{ root: string; dir: string; registry: DeviceRegistry; events: DeviceEvent[] }> {
  const root = await tempRoot();
  const dir = join(root, 'config');
  await mkdir(dir);
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), content);
  }
  // The build outputs go as the firmware service removes them (without its lanes: no jobs here).
  const forgetBuild = (configuration: string, name: string) => removeBuildOutputs(resolveBuildPaths(dir, configuration), name);
  const registry = new DeviceRegistry({ configDir: dir, debounceMs: 20, forgetBuild });
  cleanups.push(() => registry.stop());
  const events: DeviceEvent[] = [];
  registry.onEvent((e) => events.push(e));
  await registry.start();
  return { root, dir, registry, events };
}

function storageJson(fields: Record<string, unknown>): string {
  return JSON.stringify({ storage_version: 1, loaded_integrations: ['api', 'wifi'], ...fields });
}

function device(name: string, extra = ''): string {
  return `esphome:\n  name: ${name}\n  friendly_name: ${name} label\n${extra}`;
}

/** Resolves with the first matching event; fails after a bounded wait instead of hanging. */
function nextEvent(registry: DeviceRegistry, match: (e: DeviceEvent) => boolean, timeoutMs = 5000): Promise<DeviceEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sub[Symbol.dispose]();
      reject(new Error('timed out waiting for a device event'));
    }, timeoutMs);
    const sub = registry.onEvent((e) => {
      if (!match(e)) return;
      clearTimeout(timer);
      sub[Symbol.dispose]();
      resolve(e);
    });
  });
}

async function expectKilnError(promise: Promise<unknown> | (() => unknown), code: string, field?: string): Promise<KilnError> {
  let caught: unknown;
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(KilnError);
  const err = caught as KilnError;
  expect(err.code).toBe(code);
  if (field !== undefined) expect(err.details['field']).toBe(field);
  return err;
}

/** Every path under root with its content and mtime, to prove an operation touched nothing. */
async function snapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    const s = await stat(path);
    out[path] = entry.isFile() ? `${s.mtimeMs}:${await readFile(path, 'utf8')}` : 'dir';
  }
  return out;
}

function parse(text: string): unknown {
  const secret = { tag: '!secret', resolve: (v: string) => `secret:${v}` };
  return parseDocument(text, { customTags: [secret] }).toJS();
}

describe('DeviceRegistry scan', () => {
  it('lists devices with fields from YAML and StorageJSON, sorted by configuration', async () => {
    const { dir, registry } = await setup({
      'living-room.yaml': [
        'substitutions:',
        '  devname: living-room',
        'esphome:',
        '  name: ${devname}',
        '  friendly_name: Living Room',
        '  comment: by the sofa',
        'esp8266:',
        '  board: d1_mini',
        'wifi:',
        '  ssid: !secret wifi_ssid',
        '  password: !secret wifi_password',
        'sensor:',
        '  - platform: template',
        '    lambda: !lambda return 1.0;',
        'packages:',
        '  base: !include common/base.yaml',
        '  other: !include { file: common/x.yaml, vars: { a: 1 } }',
        'custom: !my_own_tag [1, 2]',
        '',
      ].join('\n'),
      'attic.yaml': 'esphome:\n  name: attic\nrp2040:\n  board: rpipicow\nwifi:\n  use_address: 10.0.0.9\n',
      '.esphome/storage/living-room.yaml.json': storageJson({
        name: 'living-room',
        friendly_name: 'Living Room (old)',
        esp_platform: 'ESP8266',
        address: 'living-room.local',
        esphome_version: '2025.10.1',
        firmware_bin_path: '/config/.esphome/build/living-room/firmware.bin',
      }),
    });
    const list = registry.list();
    expect(list.map((d) => d.configuration)).toEqual(['attic.yaml', 'living-room.yaml']);
    expect(registry.get('living-room.yaml')).toEqual({
      configuration: 'living-room.yaml',
      name: 'living-room',
      friendlyName: 'Living Room',
      platform: 'esp8266',
      board: 'd1_mini',
      comment: 'by the sofa',
      address: 'living-room.local',
      deployedVersion: '2025.10.1',
      hasBuild: true,
      modifiedAtMs: (await stat(join(dir, 'living-room.yaml'))).mtimeMs,
    });
    expect(registry.get('attic.yaml')).toMatchObject({
      name: 'attic',
      friendlyName: '',
      platform: 'rp2040',
      board: 'rpipicow',
      address: '10.0.0.9',
      deployedVersion: '',
      hasBuild: false,
    });
  });

  it('takes the platform from StorageJSON when the YAML has no platform block', async () => {
    const { registry } = await setup({
      'pkg.yaml': 'esphome:\n  name: pkg\npackages:\n  board: !include boards/bk.yaml\n',
      '.esphome/storage/pkg.yaml.json': storageJson({ esp_platform: 'BK72XX', esphome_version: '2025.9.0' }),
    });
    expect(registry.get('pkg.yaml')).toMatchObject({ platform: 'bk72xx', deployedVersion: '2025.9.0', hasBuild: false });
  });

  it('still lists a YAML that fails to parse, named after its file', async () => {
    const { registry } = await setup({
      'broken.yaml': 'esphome:\n  name: [unterminated\n  friendly_name: Broken\n',
      '.esphome/storage/broken.yaml.json': storageJson({ esp_platform: 'ESP32', esphome_version: '2025.1.0' }),
    });
    expect(registry.get('broken.yaml')).toMatchObject({ configuration: 'broken.yaml', name: 'broken', friendlyName: '', platform: '', board: '' });
  });

  it('ignores secrets.yaml, hidden files, subdirectories and non-YAML files', async () => {
    const { registry } = await setup({
      'real.yaml': device('real'),
      'secrets.yaml': 'wifi_ssid: x\n',
      '.hidden.yaml': device('hidden'),
      'sub/nested.yaml': device('nested'),
      'notes.txt': 'hello',
      'real.yaml.bak': device('bak'),
    });
    expect(registry.list().map((d) => d.configuration)).toEqual(['real.yaml']);
    await expectKilnError(() => registry.get('secrets.yaml'), 'not_found');
    await expectKilnError(registry.getConfig('secrets.yaml'), 'not_found');
    await expectKilnError(registry.delete('secrets.yaml'), 'not_found');
  });
});

describe('DeviceRegistry config read/write', () => {
  it('getConfig returns the raw YAML text and not_found for a missing file', async () => {
    const text = device('kitchen', '# keep this comment\nesp32:\n  board: esp32dev\n');
    const { registry } = await setup({ 'kitchen.yaml': text });
    expect(await registry.getConfig('kitchen.yaml')).toBe(text);
    await expectKilnError(registry.getConfig('nope.yaml'), 'not_found');
  });

  it('updateConfig replaces the content atomically, leaves no temp files and reports the update', async () => {
    const { dir, registry, events } = await setup({ 'kitchen.yaml': device('kitchen') });
    const next = 'esphome:\n  name: kitchen\n  friendly_name: New Kitchen\nesp32:\n  board: esp32-s3-devkitc-1\n';
    const info = await registry.updateConfig('kitchen.yaml', next);
    expect(await readFile(join(dir, 'kitchen.yaml'), 'utf8')).toBe(next);
    expect(info).toMatchObject({ friendlyName: 'New Kitchen', platform: 'esp32', board: 'esp32-s3-devkitc-1' });
    expect(registry.get('kitchen.yaml')).toEqual(info);
    expect(await readdir(dir)).toEqual(['kitchen.yaml']);
    expect(events.at(-1)).toEqual({ type: 'device_updated', device: info });
  });

  it('updateConfig refuses bad content with invalid_args on field content and leaves the file unchanged', async () => {
    const original = device('kitchen');
    const { dir, registry } = await setup({ 'kitchen.yaml': original });
    const bad = await expectKilnError(registry.updateConfig('kitchen.yaml', 'esphome:\n  name: [oops\n'), 'invalid_args', 'content');
    expect(bad.message).toMatch(/YAML/);
    await expectKilnError(registry.updateConfig('kitchen.yaml', 'esp32:\n  board: esp32dev\n'), 'invalid_args', 'content');
    await expectKilnError(registry.updateConfig('kitchen.yaml', `esphome:\n  name: k\n# ${'x'.repeat(1024 * 1024)}\n`), 'invalid_args', 'content');
    await expectKilnError(registry.updateConfig('kitchen.yaml', 42 as unknown as string), 'invalid_args', 'content');
    expect(await readFile(join(dir, 'kitchen.yaml'), 'utf8')).toBe(original);
    expect(await readdir(dir)).toEqual(['kitchen.yaml']);
  });

  it('updateConfig on a missing configuration is not_found and creates nothing', async () => {
    const { dir, registry } = await setup();
    await expectKilnError(registry.updateConfig('ghost.yaml', device('ghost')), 'not_found');
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('DeviceRegistry create', () => {
  it('slugifies the label and writes a complete default esp32 configuration', async () => {
    const { dir, registry, events } = await setup();
    const info = await registry.create({ name: '  Küche  Licht -- 2 ' });
    expect(info).toMatchObject({ configuration: 'kuche-licht-2.yaml', name: 'kuche-licht-2', friendlyName: 'Küche  Licht -- 2', platform: 'esp32', board: 'esp32dev' });
    const text = await readFile(join(dir, 'kuche-licht-2.yaml'), 'utf8');
    expect(text).toContain('ssid: !secret wifi_ssid');
    expect(text).toContain('password: !secret wifi_password');
    expect(parse(text)).toEqual({
      esphome: { name: 'kuche-licht-2', friendly_name: 'Küche  Licht -- 2' },
      esp32: { board: 'esp32dev' },
      logger: null,
      api: null,
      ota: [{ platform: 'esphome' }],
      wifi: { ssid: 'secret:wifi_ssid', password: 'secret:wifi_password' },
    });
    expect(events).toEqual([{ type: 'device_added', device: info }]);
    expect(registry.list()).toEqual([info]);
  });

  it('uses the given platform and board', async () => {
    const { dir, registry } = await setup();
    const info = await registry.create({ name: 'Garage', platform: 'esp8266', board: 'nodemcuv2' });
    expect(info).toMatchObject({ configuration: 'garage.yaml', platform: 'esp8266', board: 'nodemcuv2' });
    expect(parse(await readFile(join(dir, 'garage.yaml'), 'utf8'))).toMatchObject({ esp8266: { board: 'nodemcuv2' } });
  });

  it('refuses an existing file with already_exists unless overwrite is set', async () => {
    const { dir, registry } = await setup({ 'garage.yaml': device('garage') });
    await expectKilnError(registry.create({ name: 'Garage' }), 'already_exists');
    expect(await readFile(join(dir, 'garage.yaml'), 'utf8')).toBe(device('garage'));
    const info = await registry.create({ name: 'Garage', overwrite: true });
    expect(info.friendlyName).toBe('Garage');
    expect(await readFile(join(dir, 'garage.yaml'), 'utf8')).toContain('friendly_name: "Garage"');
  });

  it.each([
    [{ name: '' }, 'name'],
    [{ name: '   ' }, 'name'],
    [{ name: '!!!' }, 'name'],
    [{ name: 'x'.repeat(65) }, 'name'],
    [{ name: 42 }, 'name'],
    [{ name: 'ok', platform: 'esp31' }, 'platform'],
    [{ name: 'ok', platform: 'ESP32' }, 'platform'],
    [{ name: 'ok', board: '' }, 'board'],
    [{ name: 'ok', board: 'esp32dev\nwifi: evil' }, 'board'],
    [{ name: 'ok', board: '../x' }, 'board'],
  ])('refuses %j with invalid_args on field %s and writes nothing', async (args, field) => {
    const { dir, registry } = await setup();
    await expectKilnError(registry.create(args as unknown as { name: string }), 'invalid_args', field);
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('DeviceRegistry delete', () => {
  it('removes the YAML, its StorageJSON and its build dir, leaving other devices alone', async () => {
    const { dir, registry, events } = await setup({
      'porch.yaml': 'esphome:\n  name: porch-light\nesp32:\n  board: esp32dev\n',
      'other.yaml': device('other'),
      '.esphome/storage/porch.yaml.json': storageJson({ name: 'porch-light' }),
      '.esphome/storage/other.yaml.json': storageJson({ name: 'other' }),
      '.esphome/build/porch-light/firmware.bin': 'bin',
      '.esphome/build/other/firmware.bin': 'bin',
    });
    await registry.delete('porch.yaml');
    expect(existsSync(join(dir, 'porch.yaml'))).toBe(false);
    expect(existsSync(join(dir, '.esphome/storage/porch.yaml.json'))).toBe(false);
    expect(existsSync(join(dir, '.esphome/build/porch-light'))).toBe(false);
    expect(existsSync(join(dir, 'other.yaml'))).toBe(true);
    expect(existsSync(join(dir, '.esphome/storage/other.yaml.json'))).toBe(true);
    expect(existsSync(join(dir, '.esphome/build/other/firmware.bin'))).toBe(true);
    expect(registry.list().map((d) => d.configuration)).toEqual(['other.yaml']);
    expect(events.at(-1)).toEqual({ type: 'device_removed', configuration: 'porch.yaml' });
    await expectKilnError(() => registry.get('porch.yaml'), 'not_found');
  });

  it('is not_found for a missing configuration', async () => {
    const { registry } = await setup();
    await expectKilnError(registry.delete('ghost.yaml'), 'not_found');
  });
});

describe('DeviceRegistry watching', () => {
  it('reports files added, changed and removed on disk by another writer', async () => {
    const { dir, registry } = await setup();
    const added = nextEvent(registry, (e) => e.type === 'device_added');
    // Written like an editor saves (temp + rename), so the first sight of the file is complete.
    await writeFile(join(dir, '.shed.yaml.tmp'), device('shed'));
    await rename(join(dir, '.shed.yaml.tmp'), join(dir, 'shed.yaml'));
    expect(await added).toMatchObject({ type: 'device_added', device: { configuration: 'shed.yaml', friendlyName: 'shed label' } });

    // A plain in-place write may be seen truncated first; wait for the final state.
    const updated = nextEvent(registry, (e) => e.type === 'device_updated' && e.device.friendlyName === 'Garden Shed');
    await writeFile(join(dir, 'shed.yaml'), 'esphome:\n  name: shed\n  friendly_name: Garden Shed\n');
    expect(await updated).toMatchObject({ device: { configuration: 'shed.yaml', friendlyName: 'Garden Shed' } });
    expect(registry.get('shed.yaml').friendlyName).toBe('Garden Shed');

    const removed = nextEvent(registry, (e) => e.type === 'device_removed');
    await unlink(join(dir, 'shed.yaml'));
    expect(await removed).toEqual({ type: 'device_removed', configuration: 'shed.yaml' });
    expect(registry.list()).toEqual([]);
  });

  it('reports a StorageJSON written by a build as an update', async () => {
    const { dir, registry } = await setup({ 'shed.yaml': device('shed'), '.esphome/storage/.keep': '' });
    expect(registry.get('shed.yaml').hasBuild).toBe(false);
    const updated = nextEvent(registry, (e) => e.type === 'device_updated' && e.device.hasBuild);
    await writeFile(join(dir, '.esphome/storage/shed.yaml.json'), storageJson({ esphome_version: '2025.11.0', firmware_bin_path: '/b/firmware.bin', address: '10.1.1.1' }));
    expect(await updated).toMatchObject({ device: { deployedVersion: '2025.11.0', hasBuild: true, address: '10.1.1.1' } });
  });

  it('stops reporting after stop()', async () => {
    const { dir, registry, events } = await setup();
    registry.stop();
    await writeFile(join(dir, 'late.yaml'), device('late'));
    // Bounded wait well past the 20 ms debounce: a running watcher would have reported by then.
    await new Promise((r) => setTimeout(r, 300));
    expect(events).toEqual([]);
    expect(registry.list()).toEqual([]);
  });
});

describe('DeviceRegistry argument checks', () => {
  const BAD = ['../outside.yaml', 'sub/nested.yaml', 'sub\\nested.yaml', 'a\0.yaml', '.hidden.yaml', '..', 'notes.txt', '', 'x/../outside.yaml'];

  it.each(BAD)('refuses configuration %j with invalid_args and touches no file', async (name) => {
    const { root, registry } = await setup({ 'real.yaml': device('real'), 'sub/nested.yaml': device('nested'), '.hidden.yaml': device('h') });
    await writeFile(join(root, 'outside.yaml'), device('outside'));
    const before = await snapshot(root);
    await expectKilnError(() => registry.get(name), 'invalid_args', 'configuration');
    await expectKilnError(registry.getConfig(name), 'invalid_args', 'configuration');
    await expectKilnError(registry.updateConfig(name, device('evil')), 'invalid_args', 'configuration');
    await expectKilnError(registry.delete(name), 'invalid_args', 'configuration');
    expect(await snapshot(root)).toEqual(before);
  });

  it('refuses an absolute path with invalid_args and touches no file', async () => {
    const { root, registry } = await setup({ 'real.yaml': device('real') });
    const outside = join(root, 'outside.yaml');
    await writeFile(outside, device('outside'));
    const before = await snapshot(root);
    await expectKilnError(registry.getConfig(outside), 'invalid_args', 'configuration');
    await expectKilnError(registry.updateConfig(outside, device('evil')), 'invalid_args', 'configuration');
    await expectKilnError(registry.delete(outside), 'invalid_args', 'configuration');
    expect(await snapshot(root)).toEqual(before);
  });
});

describe('DeviceRegistry listeners', () => {
  it('stops delivering to a disposed listener and tracks the listener count', async () => {
    const { registry } = await setup();
    const base = registry.listenerCount;
    const seen: DeviceEvent[] = [];
    const sub = registry.onEvent((e) => seen.push(e));
    expect(registry.listenerCount).toBe(base + 1);
    await registry.create({ name: 'One' });
    expect(seen.map((e) => e.type)).toEqual(['device_added']);
    sub[Symbol.dispose]();
    sub[Symbol.dispose]();
    expect(registry.listenerCount).toBe(base);
    await registry.create({ name: 'Two' });
    expect(seen).toHaveLength(1);
  });

  it('keeps delivering to other listeners when one throws', async () => {
    const { registry, events } = await setup();
    registry.onEvent(() => {
      throw new Error('boom');
    });
    const info = await registry.create({ name: 'Three' });
    expect(events.at(-1)).toEqual({ type: 'device_added', device: info });
  });
});
