import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configBundleFiles as bundleOf } from '../src/offloader/config-bundle.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-bundle-files-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function put(name: string, text: string): Promise<void> {
  await mkdir(join(dir, name, '..'), { recursive: true });
  await writeFile(join(dir, name), text);
}

/** The files only (the tests of unresolved references read both). */
async function configBundleFiles(configDir: string, configuration: string) {
  return (await bundleOf(configDir, configuration)).files;
}

async function names(configuration = 'porch.yaml'): Promise<string[]> {
  return (await configBundleFiles(dir, configuration)).map((f) => f.name);
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

  it('esphome includes of a package count too (relative to the config dir), and an include may be a directory', async () => {
    await put('porch.yaml', 'esphome:\n  name: porch\n  includes:\n    - lib/\npackages:\n  base: !include common/base.yaml\n');
    await put('common/base.yaml', 'esphome:\n  includes:\n    - src/shared.h\n');
    await put('src/shared.h', '#pragma once\n');
    await put('lib/a.h', '#pragma once\n');
    await put('lib/deep/b.cpp', 'int b;\n');
    await put('common/src/shared.h', 'not this one: includes are relative to the config dir\n');
    expect(await names()).toEqual(['porch.yaml', 'common/base.yaml', 'lib/a.h', 'lib/deep/b.cpp', 'src/shared.h']);
    await put('common/base.yaml', 'esphome:\n  includes:\n    - ../outside.h\n');
    await expect(configBundleFiles(dir, 'porch.yaml')).rejects.toMatchObject({ code: 'failed_precondition', details: { file: '../outside.h' } });
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

describe('references built from ESPHome substitutions', () => {
  it('`${name}` and `$name` forms, in component files and !include paths, from the device substitutions', async () => {
    await put(
      'kitchen.yaml',
      [
        'substitutions:\n  font_dir: fonts\n  name: kitchen',
        'esphome:\n  name: $name\n  includes:\n    - src/${name}.h',
        'font:\n  - file: ${font_dir}/Roboto.ttf\n    id: f\n  - file: "$font_dir/other.ttf"\n    id: o\n  - file: "gfonts://${font_dir}"\n    id: web',
        'packages:\n  board: !include common/${name}-board.yaml',
        '',
      ].join('\n'),
    );
    // The package sees the device's substitutions too (one substitution pass over the merged config).
    await put('common/kitchen-board.yaml', 'image:\n  - file: icons/${name}.png\n    id: i\n');
    for (const f of ['fonts/Roboto.ttf', 'fonts/other.ttf', 'src/kitchen.h', 'icons/kitchen.png']) await put(f, `bytes of ${f}`);
    const bundle = await bundleOf(dir, 'kitchen.yaml');
    expect(bundle.files.map((f) => f.name)).toEqual(['kitchen.yaml', 'fonts/Roboto.ttf', 'fonts/other.ttf', 'common/kitchen-board.yaml', 'src/kitchen.h', 'icons/kitchen.png']);
    expect(bundle.files.find((f) => f.name === 'fonts/other.ttf')!.data.toString()).toBe('bytes of fonts/other.ttf');
    expect(bundle.unresolved).toEqual([]);
    // Deterministic: the same input, the same list.
    expect((await bundleOf(dir, 'kitchen.yaml')).files.map((f) => f.name)).toEqual(bundle.files.map((f) => f.name));
  });

  it('values that reference other substitutions; `$$` is no escape (as in esphome); `${ name }` with spaces reads the variable', async () => {
    await put(
      'porch.yaml',
      [
        'substitutions:\n  assets: assets\n  font_dir: ${assets}/fonts\n  font: $font_dir/${family}-${weight}.ttf\n  family: Roboto\n  weight: 700\n  icon: wifi',
        'font:\n  - file: $font\n    id: f',
        'image:\n  - file: "icons/$$icon.png"\n    id: i\n  - file: "${ assets }/logo.png"\n    id: l',
        '',
      ].join('\n'),
    );
    for (const f of ['assets/fonts/Roboto-700.ttf', 'icons/$wifi.png', 'assets/logo.png']) await put(f, '');
    const bundle = await bundleOf(dir, 'porch.yaml');
    expect(bundle.files.map((f) => f.name)).toEqual(['porch.yaml', 'assets/fonts/Roboto-700.ttf', 'icons/$wifi.png', 'assets/logo.png']);
    expect(bundle.unresolved).toEqual([]);
  });

  it('package substitutions apply everywhere; the device’s win over a package’s, a later package’s over an earlier one’s', async () => {
    await put(
      'porch.yaml',
      [
        'substitutions:\n  icon_dir: device_icons',
        'packages:\n  - !include common/a.yaml\n  - !include common/b.yaml\n  - substitutions:\n      inline_dir: inline',
        'image:\n  - file: ${icon_dir}/x.png\n    id: x\n  - file: ${board_dir}/pins.png\n    id: p\n  - file: ${nested_dir}/n.png\n    id: n\n  - file: ${inline_dir}/i.png\n    id: i',
        '',
      ].join('\n'),
    );
    await put('common/a.yaml', 'substitutions:\n  icon_dir: a_icons\n  board_dir: a_board\n  sound_dir: sounds\npackages:\n  deeper: !include nested.yaml\n');
    await put('common/nested.yaml', 'substitutions:\n  nested_dir: nested\n');
    await put('common/b.yaml', 'substitutions:\n  board_dir: b_board\nspeaker:\n  - file: ${sound_dir}/chime.wav\n');
    for (const f of ['device_icons/x.png', 'b_board/pins.png', 'nested/n.png', 'inline/i.png', 'sounds/chime.wav']) await put(f, '');
    const bundle = await bundleOf(dir, 'porch.yaml');
    expect(bundle.files.map((f) => f.name)).toEqual([
      'porch.yaml',
      'common/a.yaml',
      'common/b.yaml',
      'device_icons/x.png',
      'b_board/pins.png',
      'nested/n.png',
      'inline/i.png',
      'common/nested.yaml',
      'sounds/chime.wav',
    ]);
    expect(bundle.unresolved).toEqual([]);
    // `substitutions: !include …` and `packages: !include …` are read too.
    await put('porch.yaml', 'substitutions: !include subs.yaml\npackages: !include common/packages.yaml\nimage:\n  - file: ${icon_dir}/x.png\n    id: x\n  - file: ${nested_dir}/n.png\n    id: n\n');
    await put('subs.yaml', 'icon_dir: device_icons\n');
    await put('common/packages.yaml', 'deeper: !include nested.yaml\n');
    expect(await names()).toEqual(['porch.yaml', 'subs.yaml', 'common/packages.yaml', 'device_icons/x.png', 'nested/n.png', 'common/nested.yaml']);
  });

  it('!include vars apply inside the included file (over the substitutions, each include its own), down its own includes; `defaults:` fill the gaps', async () => {
    await put(
      'porch.yaml',
      [
        'substitutions:\n  icon: global\n  dir: icons',
        'packages:',
        '  one: !include { file: common/sensor.yaml, vars: { icon: one } }',
        '  two: !include\n    file: common/sensor.yaml\n    vars:\n      icon: two\n      dir: ${dir}/big\n      size: large',
        'image:\n  - file: ${dir}/${icon}.png\n    id: g',
        '',
      ].join('\n'),
    );
    await put('common/sensor.yaml', 'defaults:\n  size: small\nimage:\n  - file: ${dir}/${icon}-${size}.png\n    id: s\n<<: !include leaf.yaml\n');
    // No vars of its own: the including file's vars are still in scope.
    await put('common/leaf.yaml', 'animation:\n  - file: anim/${icon}.gif\n    id: a\n');
    for (const f of ['icons/global.png', 'icons/one-small.png', 'icons/big/two-large.png', 'anim/one.gif', 'anim/two.gif']) await put(f, '');
    const bundle = await bundleOf(dir, 'porch.yaml');
    expect(bundle.files.map((f) => f.name)).toEqual(['porch.yaml', 'common/sensor.yaml', 'icons/global.png', 'icons/one-small.png', 'common/leaf.yaml', 'icons/big/two-large.png', 'anim/one.gif', 'anim/two.gif']);
    expect(bundle.unresolved).toEqual([]);
  });

  it('an unresolved reference is not collected and is reported with why: undefined, !secret, a Jinja expression, a `<<:` include path', async () => {
    await put(
      'porch.yaml',
      [
        'substitutions:\n  secret_dir: !secret dir\n  name: porch',
        'font:\n  - file: ${missing}/x.ttf\n    id: m\n  - file: ${secret_dir}/y.ttf\n    id: s\n  - file: "${ name | upper }.ttf"\n    id: j\n  - file: fonts/${name}.ttf\n    id: ok',
        '<<: !include common/${name}.yaml',
        'wifi:\n  password: !secret wifi_password',
        '',
      ].join('\n'),
    );
    await put('fonts/porch.ttf', '');
    await put('secrets.yaml', 'dir: fonts\nwifi_password: x\n');
    const bundle = await bundleOf(dir, 'porch.yaml');
    expect(bundle.files.map((f) => f.name)).toEqual(['porch.yaml', 'fonts/porch.ttf', 'secrets.yaml']);
    expect(bundle.unresolved).toEqual([
      { file: 'porch.yaml', ref: '${missing}/x.ttf', reason: "substitution 'missing' is not defined" },
      { file: 'porch.yaml', ref: '${secret_dir}/y.ttf', reason: "substitution 'secret_dir' is !secret dir, not read for the bundle" },
      { file: 'porch.yaml', ref: '${ name | upper }.ttf', reason: '"${ name | upper }" is a Jinja expression, not evaluated for the bundle' },
      { file: 'porch.yaml', ref: 'common/${name}.yaml', reason: 'esphome does not substitute the path of an !include under a `<<:` merge key' },
    ]);
  });

  it('a substitution cycle is reported, not followed; an include loop that grows its vars is refused', async () => {
    await put('porch.yaml', 'substitutions:\n  a: ${b}/x\n  b: ${a}/y\n  c: ${c}\nimage:\n  - file: $a/i.png\n    id: i\n  - file: ${c}.png\n    id: c\n');
    const bundle = await bundleOf(dir, 'porch.yaml');
    expect(bundle.files.map((f) => f.name)).toEqual(['porch.yaml']);
    expect(bundle.unresolved.map((u) => [u.ref, u.reason])).toEqual([
      ['$a/i.png', "substitution 'a' is part of a cycle (it refers back to itself)"],
      ['${c}.png', "substitution 'c' is part of a cycle (it refers back to itself)"],
    ]);
    await put('porch.yaml', 'packages:\n  a: !include { file: loop.yaml, vars: { n: "0" } }\n');
    await put('loop.yaml', 'packages:\n  again: !include { file: loop.yaml, vars: { n: "${n}1" } }\n');
    await expect(bundleOf(dir, 'porch.yaml')).rejects.toMatchObject({ code: 'failed_precondition', message: expect.stringContaining('nested deeper than 32') });
  });

  it('a substituted path that leaves the config dir is refused, naming the reference and what it resolved to', async () => {
    await put('porch.yaml', 'substitutions:\n  font_dir: ../../etc\nfont:\n  - file: ${font_dir}/x.ttf\n    id: f\n');
    const refused = bundleOf(dir, 'porch.yaml');
    await expect(refused).rejects.toMatchObject({ code: 'failed_precondition', details: { file: '${font_dir}/x.ttf', resolved: '../../etc/x.ttf' } });
    await expect(refused).rejects.toThrow('"${font_dir}/x.ttf" ("../../etc/x.ttf" once substituted) outside the config dir');
    await put('porch.yaml', 'packages:\n  p: !include { file: common/p.yaml, vars: { where: /etc } }\n');
    await put('common/p.yaml', 'image:\n  - file: ${where}/logo.png\n    id: l\n');
    await expect(bundleOf(dir, 'porch.yaml')).rejects.toMatchObject({ code: 'failed_precondition', details: { file: '${where}/logo.png', resolved: '/etc/logo.png' } });
    await put('porch.yaml', 'substitutions:\n  up: ..\npackages:\n  p: !include ${up}/outside.yaml\n');
    await expect(bundleOf(dir, 'porch.yaml')).rejects.toMatchObject({ code: 'failed_precondition', details: { file: '${up}/outside.yaml', resolved: '../outside.yaml' } });
  });

  it('a device YAML or an included file nested 500,000 levels deep is refused naming the limit, without parsing it', async () => {
    const peakRssMb = () => process.resourceUsage().maxRSS / 1024;
    const peakBefore = peakRssMb();
    const deep = `x: ${'['.repeat(500_000)}${']'.repeat(500_000)}\n`;
    await put('porch.yaml', 'esphome:\n  name: porch\npackages:\n  deep: !include deep.yaml\n');
    await put('deep.yaml', deep);
    await expect(bundleOf(dir, 'porch.yaml')).rejects.toMatchObject({ code: 'failed_precondition', message: expect.stringContaining('deep.yaml nests collections deeper than the limit of 64 levels'), details: { file: 'deep.yaml' } });
    await put('kitchen.yaml', `esphome:\n  name: kitchen\n${deep}`);
    await expect(bundleOf(dir, 'kitchen.yaml')).rejects.toMatchObject({ code: 'failed_precondition', message: expect.stringContaining('limit of 64 levels') });
    // The old code parsed each: hundreds of MB at the peak.
    expect(peakRssMb() - peakBefore).toBeLessThan(100);
  }, 120_000);
});
