import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configBundleFiles } from '../src/offloader/config-bundle.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-bundle-files-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function put(name: string, text: string): Promise<void> {
  await mkdir(join(dir, name, '..'), { recursive: true });
  await writeFile(join(dir, name), text);
}

describe('the files a remote compile needs from the config dir', () => {
  it('the YAML, its !include files (recursively, relative to the including file), esphome includes and secrets.yaml', async () => {
    await put(
      'porch.yaml',
      'esphome:\n  name: porch\n  includes:\n    - src/porch.h\npackages:\n  base: !include common/base.yaml\n  wifi: !include { file: common/wifi.yaml, vars: { ssid: x } }\nesp32:\n  board: esp32dev\nwifi:\n  password: !secret wifi_password\n',
    );
    await put('common/base.yaml', 'logger:\n<<: !include ../shared.yaml\n');
    await put('common/wifi.yaml', 'wifi:\n  ssid: ${ssid}\n');
    await put('shared.yaml', 'api:\n');
    await put('src/porch.h', '#pragma once\n');
    await put('secrets.yaml', 'wifi_password: hunter2\n');
    await put('kitchen.yaml', 'esphome:\n  name: kitchen\n');
    const files = await configBundleFiles(dir, 'porch.yaml');
    expect(files.map((f) => f.name)).toEqual(['porch.yaml', 'common/base.yaml', 'common/wifi.yaml', 'src/porch.h', 'shared.yaml', 'secrets.yaml']);
    expect(files.find((f) => f.name === 'shared.yaml')!.data.toString()).toBe('api:\n');
    // Stable: the same configuration gives the same list (so the same bundle hash).
    expect((await configBundleFiles(dir, 'porch.yaml')).map((f) => f.name)).toEqual(files.map((f) => f.name));
  });

  it('a reference outside the config dir is refused, naming it; a missing include is not_found', async () => {
    await put('porch.yaml', 'esphome:\n  name: porch\npackages:\n  a: !include ../../etc/passwd.yaml\n');
    await expect(configBundleFiles(dir, 'porch.yaml')).rejects.toMatchObject({ code: 'failed_precondition', details: { file: '../../etc/passwd.yaml' } });
    await put('porch.yaml', 'esphome:\n  name: porch\npackages:\n  a: !include /etc/hosts.yaml\n');
    await expect(configBundleFiles(dir, 'porch.yaml')).rejects.toMatchObject({ code: 'failed_precondition' });
    await put('porch.yaml', 'esphome:\n  name: porch\npackages:\n  a: !include missing.yaml\n');
    await expect(configBundleFiles(dir, 'porch.yaml')).rejects.toMatchObject({ code: 'not_found', details: { file: 'missing.yaml' } });
  });

  it('include cycles end (each file once)', async () => {
    await put('porch.yaml', 'esphome:\n  name: porch\npackages:\n  a: !include a.yaml\n');
    await put('a.yaml', 'packages:\n  b: !include porch.yaml\n');
    expect((await configBundleFiles(dir, 'porch.yaml')).map((f) => f.name)).toEqual(['porch.yaml', 'a.yaml']);
  });

  it('the local files components read: font/image/animation/audio `file:` values and `{type: local, path}` forms, relative to the config dir', async () => {
    await put(
      'porch.yaml',
      [
        'esphome:\n  name: porch',
        'packages:\n  look: !include common/look.yaml',
        'font:\n  - file: "fonts/Roboto.ttf"\n    id: roboto\n  - file: "gfonts://Roboto"\n    id: web\n  - file: { type: local, path: fonts/Mono.ttf }\n    id: mono\n  - file: { type: gfonts, family: Roboto }\n    id: g',
        'image:\n  - file: logo.png\n    id: logo\n  - file: mdi:home\n    id: home\n  - file: https://example.com/x.png\n    id: remote',
        'animation:\n  - file: anim/boot.gif\n    id: boot',
        'media_player:\n  - platform: speaker\n    files:\n      - id: chime\n        file: sounds/chime.wav',
        '',
      ].join('\n'),
    );
    // `file:` in a package resolves against the config dir (as esphome does), not the package's dir.
    await put('common/look.yaml', 'image:\n  - file: icons/wifi.png\n    id: wifi\n');
    for (const f of ['fonts/Roboto.ttf', 'fonts/Mono.ttf', 'logo.png', 'anim/boot.gif', 'sounds/chime.wav', 'icons/wifi.png']) await put(f, `bytes of ${f}`);
    await put('fonts/unused.ttf', 'not referenced');
    const files = await configBundleFiles(dir, 'porch.yaml');
    expect(files.map((f) => f.name).sort()).toEqual(['anim/boot.gif', 'common/look.yaml', 'fonts/Mono.ttf', 'fonts/Roboto.ttf', 'icons/wifi.png', 'logo.png', 'porch.yaml', 'sounds/chime.wav']);
    expect(files.find((f) => f.name === 'fonts/Mono.ttf')!.data.toString()).toBe('bytes of fonts/Mono.ttf');
    expect((await configBundleFiles(dir, 'porch.yaml')).map((f) => f.name)).toEqual(files.map((f) => f.name));
  });

  it('a local external component sends its directory (bytecode caches left out); git sources and remote packages send nothing', async () => {
    await put(
      'porch.yaml',
      [
        'esphome:\n  name: porch',
        'external_components:\n  - source:\n      type: local\n      path: my_components\n  - source: github://esphome/esphome@dev\n    components: [uart]\n  - source: shorthand_components\n  - source: esphome/esphome@dev',
        'packages:\n  remote:\n    url: https://github.com/esphome/firmware\n    file: esphome-web/esp32.yaml',
        '',
      ].join('\n'),
    );
    await put('shorthand_components/led/__init__.py', '');
    await put('my_components/blinker/__init__.py', 'CODE = 1\n');
    await put('my_components/blinker/blinker.h', '#pragma once\n');
    await put('my_components/blinker/__pycache__/__init__.cpython-312.pyc', 'cache');
    const files = await configBundleFiles(dir, 'porch.yaml');
    expect(files.map((f) => f.name)).toEqual(['porch.yaml', 'my_components/blinker/__init__.py', 'my_components/blinker/blinker.h', 'shorthand_components/led/__init__.py']);
  });

  it('a component file outside the config dir is refused by name; a missing one is not_found', async () => {
    await put('porch.yaml', 'esphome:\n  name: porch\nfont:\n  - file: ../fonts/Roboto.ttf\n    id: roboto\n');
    await expect(configBundleFiles(dir, 'porch.yaml')).rejects.toMatchObject({ code: 'failed_precondition', details: { file: '../fonts/Roboto.ttf' } });
    await put('porch.yaml', 'esphome:\n  name: porch\nimage:\n  - file: /usr/share/logo.png\n    id: logo\n');
    await expect(configBundleFiles(dir, 'porch.yaml')).rejects.toMatchObject({ code: 'failed_precondition', details: { file: '/usr/share/logo.png' } });
    await put('porch.yaml', 'esphome:\n  name: porch\nexternal_components:\n  - source: { type: local, path: ../shared_components }\n');
    await expect(configBundleFiles(dir, 'porch.yaml')).rejects.toMatchObject({ code: 'failed_precondition', details: { file: '../shared_components' } });
    await put('porch.yaml', 'esphome:\n  name: porch\nexternal_components:\n  - source: ../elsewhere\n');
    await expect(configBundleFiles(dir, 'porch.yaml')).rejects.toMatchObject({ code: 'failed_precondition', details: { file: '../elsewhere' } });
    await put('porch.yaml', 'esphome:\n  name: porch\nimage:\n  - file: missing.png\n    id: logo\n');
    await expect(configBundleFiles(dir, 'porch.yaml')).rejects.toMatchObject({ code: 'not_found', details: { file: 'missing.png' } });
  });

  it('is bounded: a component directory of more files than a bundle may hold is refused', async () => {
    await put('porch.yaml', 'esphome:\n  name: porch\nexternal_components:\n  - source: { type: local, path: big }\n');
    for (let i = 0; i < 501; i++) await put(`big/c/f${i}.h`, '');
    await expect(configBundleFiles(dir, 'porch.yaml')).rejects.toMatchObject({ code: 'failed_precondition', message: expect.stringContaining('more than 500 files') });
  });
});
