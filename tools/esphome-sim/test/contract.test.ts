import { createHash } from 'node:crypto';
import { readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BANNER } from '../src/index.js';
import { lines, runSim, workspace, type Workspace } from './helpers.js';

let ws: Workspace;
beforeEach(async () => {
  ws = await workspace();
});
afterEach(async () => {
  await ws.dispose();
});

const sha = async (path: string): Promise<string> => createHash('sha256').update(await readFile(path)).digest('hex');

function buildPaths(dataDir: string, name: string) {
  const pioenv = join(dataDir, 'build', name, '.pioenvs', name);
  return {
    storage: (file: string) => join(dataDir, 'storage', `${file}.json`),
    buildDir: join(dataDir, 'build', name),
    platformioIni: join(dataDir, 'build', name, 'platformio.ini'),
    mainCpp: join(dataDir, 'build', name, 'src', 'main.cpp'),
    firmware: join(pioenv, 'firmware.bin'),
    factory: join(pioenv, 'firmware.factory.bin'),
    ota: join(pioenv, 'firmware.ota.bin'),
    idedata: join(dataDir, 'idedata', `${name}.json`),
  };
}

describe('compile', () => {
  it('writes StorageJSON, firmware images and idedata under <config dir>/.esphome', async () => {
    const config = await ws.device('kitchen', 'kitchen.yaml', 'web_server:\n  port: 8080\n');
    const result = await runSim(['compile', config], { cwd: ws.dir });
    expect(result.code).toBe(0);
    const data = join(ws.dir, '.esphome');
    const paths = buildPaths(data, 'kitchen');

    const storage = JSON.parse(await readFile(paths.storage('kitchen.yaml'), 'utf8')) as Record<string, unknown>;
    expect(storage).toEqual({
      storage_version: 1,
      name: 'kitchen',
      friendly_name: 'kitchen friendly',
      comment: null,
      esphome_version: '2026.11.0',
      src_version: 1,
      address: 'kitchen.local',
      web_port: 8080,
      esp_platform: 'ESP32',
      build_path: paths.buildDir,
      firmware_bin_path: paths.firmware,
      loaded_integrations: ['api', 'esp32', 'esphome', 'logger', 'ota', 'web_server', 'wifi'],
      loaded_platforms: [],
      no_mdns: false,
      framework: 'arduino',
      core_platform: 'esp32',
    });

    expect((await stat(paths.firmware)).size).toBe(256 * 1024);
    expect((await stat(paths.ota)).size).toBe(256 * 1024);
    expect((await stat(paths.factory)).size).toBeGreaterThan(256 * 1024);

    const idedata = JSON.parse(await readFile(paths.idedata, 'utf8')) as { prog_path: string; extra: { flash_images: { path: string; offset: string }[] } };
    expect(existsSync(idedata.prog_path)).toBe(true);
    expect(idedata.extra.flash_images.length).toBeGreaterThan(0);
    for (const image of idedata.extra.flash_images) {
      expect(existsSync(image.path)).toBe(true);
      expect(image.offset).toMatch(/^0x[0-9a-f]+$/);
    }
  });

  it('prints esphome/PlatformIO-shaped output in order', async () => {
    const config = await ws.device('shape');
    const result = await runSim(['compile', config], { knobs: { default: { steps: 7 } } });
    const out = lines(result.stdout);
    expect(out[0]).toBe(BANNER);
    const order = [
      `INFO Reading configuration ${config}...`,
      'INFO Generating C++ source...',
      'INFO Compiling app...',
      'Processing shape (board: esp32dev; framework: arduino; platform: platformio/espressif32)',
      '[1/7] Compiling .pioenvs/shape/src/main.cpp.o',
      '[7/7] Linking .pioenvs/shape/firmware.elf',
      'INFO Successfully compiled program.',
    ];
    const positions = order.map((l) => out.indexOf(l));
    expect(positions.every((p) => p > 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(out.filter((l) => /^\[\d+\/7\] /.test(l))).toHaveLength(7);
    expect(out.some((l) => /^RAM: {3}\[[= ]{10}\] +\d+\.\d% \(used \d+ bytes from 327680 bytes\)$/.test(l))).toBe(true);
    expect(out.some((l) => /^Flash: \[[= ]{10}\] +\d+\.\d% \(used \d+ bytes from \d+ bytes\)$/.test(l))).toBe(true);
    expect(out.some((l) => /^={25} \[SUCCESS\] Took \d+\.\d\d seconds ={25}$/.test(l))).toBe(true);
  });

  it('derives firmware content deterministically from the YAML text', async () => {
    const config = await ws.device('same');
    const paths = buildPaths(join(ws.dir, '.esphome'), 'same');
    await runSim(['compile', config]);
    const first = await sha(paths.firmware);
    await runSim(['compile', config]);
    expect(await sha(paths.firmware)).toBe(first);
    await ws.device('same', 'same.yaml', 'captive_portal:\n');
    await runSim(['compile', config]);
    expect(await sha(paths.firmware)).not.toBe(first);
  });

  it('honours ESPHOME_DATA_DIR', async () => {
    const config = await ws.device('elsewhere');
    const dataDir = join(ws.dir, 'custom-data');
    const result = await runSim(['compile', config], { env: { ESPHOME_DATA_DIR: dataDir } });
    expect(result.code).toBe(0);
    const paths = buildPaths(dataDir, 'elsewhere');
    expect(existsSync(paths.firmware)).toBe(true);
    expect(existsSync(paths.storage('elsewhere.yaml'))).toBe(true);
    expect(existsSync(paths.idedata)).toBe(true);
    expect(existsSync(join(ws.dir, '.esphome'))).toBe(false);

    const upload = await runSim(['upload', '--device', '10.0.0.9', config], { env: { ESPHOME_DATA_DIR: dataDir } });
    expect(upload.code).toBe(0);
  });
});

describe('upload', () => {
  it('fails without a prior compile', async () => {
    const config = await ws.device('fresh');
    const result = await runSim(['upload', '--device', '/dev/ttyUSB0', config]);
    expect(result.code).toBe(1);
    const firmware = buildPaths(join(ws.dir, '.esphome'), 'fresh').firmware;
    expect(result.stdout).toContain(`ERROR Firmware not found at ${firmware}`);
  });

  it('flashes a serial port with esptool-shaped output after a compile', async () => {
    const config = await ws.device('serial');
    expect((await runSim(['compile', config])).code).toBe(0);
    const result = await runSim(['upload', '--device', '/dev/ttyUSB0', config]);
    expect(result.code).toBe(0);
    const out = lines(result.stdout);
    const writes = out.filter((l) => /^Writing at 0x[0-9a-f]{8}\.\.\. \(\d+ %\)$/.test(l));
    expect(writes.length).toBeGreaterThan(1);
    expect(writes.at(-1)).toMatch(/\(100 %\)$/);
    expect(out).toContain('Hash of data verified.');
    expect(out.at(-1)).toBe('INFO Successfully uploaded program.');
  });

  it('a serial upload flashes the idedata images at their offsets', async () => {
    const config = await ws.device('layout');
    expect((await runSim(['compile', config])).code).toBe(0);
    const result = await runSim(['upload', '--device', '/dev/ttyUSB0', config]);
    expect(result.code).toBe(0);
    expect(lines(result.stdout)).toEqual(expect.arrayContaining([expect.stringMatching(/^Wrote \d+ bytes at 0x00001000$/), expect.stringMatching(/^Wrote \d+ bytes at 0x00008000$/)]));
  });

  it('a serial upload fails clearly when the idedata is unreadable or lists a missing image (OTA needs neither)', async () => {
    const config = await ws.device('broken');
    expect((await runSim(['compile', config])).code).toBe(0);
    const paths = buildPaths(join(ws.dir, '.esphome'), 'broken');
    const ideData = JSON.parse(await readFile(paths.idedata, 'utf8')) as { extra: { flash_images: { path: string }[] } };
    const bootloader = ideData.extra.flash_images[0]!.path;
    await rm(bootloader);
    const missingImage = await runSim(['upload', '--device', '/dev/ttyUSB0', config]);
    expect(missingImage.code).toBe(1);
    expect(missingImage.stdout).toContain(`ERROR Flash image ${JSON.stringify(bootloader)} at 0x1000 listed in ${paths.idedata} not found`);
    expect(missingImage.stdout).not.toContain('Connecting....');
    // Reused as saved (the platformio.ini is older), so a torn idedata is read and refused.
    await writeFile(paths.idedata, '{"prog_path": ');
    const unreadable = await runSim(['upload', '--device', '/dev/ttyUSB0', config]);
    expect(unreadable.code).toBe(1);
    expect(unreadable.stdout).toContain(`ERROR idedata not found (or unreadable) at ${paths.idedata}`);
    expect((await runSim(['upload', '--device', '10.0.0.9', config])).code).toBe(0);
  });

  it('uploads OTA with carriage-return progress updates', async () => {
    const config = await ws.device('wireless');
    await runSim(['compile', config]);
    const result = await runSim(['upload', '--device', 'OTA', config]);
    expect(result.code).toBe(0);
    const firmware = buildPaths(join(ws.dir, '.esphome'), 'wireless').firmware;
    expect(result.stdout).toContain(`INFO Uploading ${firmware} (${256 * 1024} bytes)`);
    const updates = result.stdout.split(/\r\n|\r|\n/).filter((l) => l.startsWith('Uploading: ['));
    expect(updates.length).toBeGreaterThan(1);
    expect(updates.at(-1)).toBe(`Uploading: [${'='.repeat(60)}] 100% Done...`);
    expect(result.stdout.trimEnd().endsWith('INFO Successfully uploaded program.')).toBe(true);
  });

  it('`run --no-logs` compiles then uploads', async () => {
    const config = await ws.device('runner');
    const result = await runSim(['run', '--device', '192.168.1.20', '--no-logs', config]);
    expect(result.code).toBe(0);
    const compiled = result.stdout.indexOf('INFO Successfully compiled program.');
    const uploaded = result.stdout.indexOf('INFO Successfully uploaded program.');
    expect(compiled).toBeGreaterThan(0);
    expect(uploaded).toBeGreaterThan(compiled);
  });
});

describe("serial upload: esphome's idedata rule", () => {
  const ttyUpload = (config: string) => runSim(['upload', '--device', '/dev/ttyUSB0', config]);
  const setMtime = (path: string, ms: number) => utimes(path, new Date(ms), new Date(ms));

  it('compile writes the PlatformIO project before the idedata: an [env:<name>] platformio.ini and src/main.cpp', async () => {
    const config = await ws.device('project');
    expect((await runSim(['compile', config])).code).toBe(0);
    const paths = buildPaths(join(ws.dir, '.esphome'), 'project');
    const ini = await readFile(paths.platformioIni, 'utf8');
    expect(ini).toContain('[env:project]');
    expect(ini).toMatch(/^board = esp32dev\nframework = arduino\nplatform = platformio\/espressif32$/m);
    expect(existsSync(paths.mainCpp)).toBe(true);
    expect((await stat(paths.platformioIni)).mtimeMs).toBeLessThan((await stat(paths.idedata)).mtimeMs);
  });

  it('reuses the saved idedata when platformio.ini is older than it', async () => {
    const config = await ws.device('reuse');
    expect((await runSim(['compile', config])).code).toBe(0);
    const paths = buildPaths(join(ws.dir, '.esphome'), 'reuse');
    // A layout the compile would never write: only a reused idedata flashes it.
    const ideData = JSON.parse(await readFile(paths.idedata, 'utf8')) as { extra: { flash_images: { path: string; offset: string }[] } };
    ideData.extra.flash_images = [{ path: ideData.extra.flash_images[0]!.path, offset: '0x2000' }];
    await writeFile(paths.idedata, JSON.stringify(ideData));
    const now = Date.now();
    await setMtime(paths.platformioIni, now - 10_000);
    await setMtime(paths.idedata, now);
    const result = await ttyUpload(config);
    expect(result.code).toBe(0);
    expect(lines(result.stdout)).toContainEqual(expect.stringMatching(/^Wrote \d+ bytes at 0x00002000$/));
    expect(result.stdout).not.toMatch(/at 0x00001000$/m);
  });

  it('regenerates the idedata of a local build (the project is there) when platformio.ini is newer, or the idedata is missing', async () => {
    const config = await ws.device('regen');
    expect((await runSim(['compile', config])).code).toBe(0);
    const paths = buildPaths(join(ws.dir, '.esphome'), 'regen');
    await writeFile(paths.idedata, JSON.stringify({ prog_path: '/nowhere/firmware.elf', extra: { flash_images: [] } }));
    const now = Date.now();
    await setMtime(paths.idedata, now - 10_000);
    await setMtime(paths.platformioIni, now);
    const newerIni = await ttyUpload(config);
    expect(newerIni.code).toBe(0);
    expect(lines(newerIni.stdout)).toEqual(expect.arrayContaining([expect.stringMatching(/^Wrote \d+ bytes at 0x00001000$/), expect.stringMatching(/^Wrote \d+ bytes at 0x00008000$/)]));
    expect((JSON.parse(await readFile(paths.idedata, 'utf8')) as { prog_path: string }).prog_path).not.toBe('/nowhere/firmware.elf');

    // Equal timestamps are not "older": esphome regenerates then too.
    await setMtime(paths.platformioIni, now);
    await setMtime(paths.idedata, now);
    const before = await readFile(paths.idedata, 'utf8');
    await writeFile(paths.idedata, before.replace('0x8000', '0x9000'));
    await setMtime(paths.idedata, now);
    expect((await ttyUpload(config)).code).toBe(0);
    expect(await readFile(paths.idedata, 'utf8')).toBe(before);

    await rm(paths.idedata);
    expect((await ttyUpload(config)).code).toBe(0);
    expect(existsSync(paths.idedata)).toBe(true);
  });

  it('fails like esphome when the idedata must be regenerated but the build dir holds no project', async () => {
    const config = await ws.device('images-only');
    expect((await runSim(['compile', config])).code).toBe(0);
    const paths = buildPaths(join(ws.dir, '.esphome'), 'images-only');
    // What an offloader that only received images has: no platformio.ini, no sources.
    await rm(paths.platformioIni);
    await rm(join(paths.buildDir, 'src'), { recursive: true });
    const noIni = await ttyUpload(config);
    expect(noIni.code).toBe(1);
    expect(noIni.stdout).toContain('ERROR Could not match idedata, please report this error');
    expect(noIni.stdout).toContain(`Not a PlatformIO project. \`platformio.ini\` file has not been found in current working directory (${paths.buildDir})`);
    expect(noIni.stdout).toContain('simulated');
    expect(noIni.stdout).not.toContain('Connecting....');

    // An ini newer than the idedata, still no sources: the rerun has nothing to build.
    await writeFile(paths.platformioIni, '[env:images-only]\n');
    const now = Date.now();
    await setMtime(paths.idedata, now - 10_000);
    await setMtime(paths.platformioIni, now);
    const newerIni = await ttyUpload(config);
    expect(newerIni.code).toBe(1);
    expect(newerIni.stdout).toContain(`Nothing to build. Please put your source code files to the '${paths.buildDir}/src' folder`);
    // OTA never reads the idedata.
    expect((await runSim(['upload', '--device', '10.0.0.9', config])).code).toBe(0);
  });
});

describe('clean', () => {
  it('removes <data>/build/<name> and keeps storage', async () => {
    const config = await ws.device('tidy');
    await runSim(['compile', config]);
    const paths = buildPaths(join(ws.dir, '.esphome'), 'tidy');
    expect(existsSync(paths.buildDir)).toBe(true);
    const result = await runSim(['clean', config]);
    expect(result.code).toBe(0);
    expect(existsSync(paths.buildDir)).toBe(false);
    expect(existsSync(paths.storage('tidy.yaml'))).toBe(true);
    expect((await runSim(['upload', '--device', 'OTA', config])).code).toBe(1);
  });
});
