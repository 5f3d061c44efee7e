import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SIM_BIN } from '@kiln/esphome-sim';
import { FLASH_LAYOUT_ARTIFACT, PLATFORMIO_INI_ARTIFACT, PLATFORMIO_INI_MAX_BYTES } from '@kiln/toolchain';
import { resolveBuildPaths } from '@kiln/core';
import { materialiseArtifacts } from '../src/executors/materialise.js';

const bytes = (text: string): Buffer => Buffer.from(text);
const layout = (flashImages: { name: string; offset: string }[]) => ({ name: FLASH_LAYOUT_ARTIFACT, data: bytes(JSON.stringify({ flashImages })) });
const platformioIni = (text = '[env:kitchen]\nboard = esp32dev\nframework = arduino\nplatform = platformio/espressif32\n') => ({ name: PLATFORMIO_INI_ARTIFACT, data: bytes(text) });
/** What a receiver sends for a compile of `kitchen` (images, layout, platformio.ini). */
const remoteBuild = () => [
  { name: 'firmware.bin', data: bytes('app') },
  { name: 'bootloader.bin', data: bytes('boot') },
  { name: 'partitions.bin', data: bytes('parts') },
  layout([
    { name: 'bootloader.bin', offset: '0x1000' },
    { name: 'partitions.bin', offset: '0x8000' },
  ]),
];

/** The real simulator's `esphome upload` of the offloader's kitchen.yaml (it never compiled here). */
async function simSerialUpload(): Promise<{ code: number; stdout: string }> {
  await writeFile(join(configDir, 'kitchen.yaml'), 'esphome:\n  name: kitchen\nesp32:\n  board: esp32dev\n');
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('ESPHOME_')) env[key] = value;
  return new Promise((resolve) => {
    execFile(SIM_BIN, ['upload', '--device', '/dev/ttyUSB0', join(configDir, 'kitchen.yaml')], { env }, (err, stdout) => {
      resolve({ code: err ? Number(err.code ?? 1) : 0, stdout });
    });
  });
}

let configDir: string;
beforeEach(async () => {
  configDir = await mkdtemp(join(tmpdir(), 'kiln-materialise-'));
});
afterEach(async () => {
  await rm(configDir, { recursive: true, force: true });
});

describe('materialiseArtifacts', () => {
  it('writes the local idedata from the flash layout: local absolute paths, offsets kept, prog_path beside the images', async () => {
    const paths = resolveBuildPaths(configDir, 'kitchen.yaml');
    const { dir } = await materialiseArtifacts(configDir, 'kitchen.yaml', 'kitchen', [
      { name: 'firmware.bin', data: bytes('app') },
      { name: 'bootloader.bin', data: bytes('boot') },
      { name: 'extra-0123456789ab-boot_app0.bin', data: bytes('boot-app-0') },
      layout([
        { name: 'bootloader.bin', offset: '0x1000' },
        { name: 'extra-0123456789ab-boot_app0.bin', offset: '0xe000' },
      ]),
    ]);
    expect(dir).toBe(paths.firmwareDir('kitchen'));
    expect(JSON.parse(await readFile(paths.idedata('kitchen'), 'utf8'))).toEqual({
      prog_path: join(dir, 'firmware.elf'),
      extra: {
        flash_images: [
          { path: join(dir, 'bootloader.bin'), offset: '0x1000' },
          { path: join(dir, 'extra-0123456789ab-boot_app0.bin'), offset: '0xe000' },
        ],
      },
    });
    expect(await readFile(join(dir, 'extra-0123456789ab-boot_app0.bin'), 'utf8')).toBe('boot-app-0');
    // The layout itself is not an image: it is not left among them.
    expect((await readdir(dir)).sort()).toEqual(['bootloader.bin', 'extra-0123456789ab-boot_app0.bin', 'firmware.bin']);
  });

  it('refuses a layout naming an image that was not sent, or a path instead of a name, before writing anything', async () => {
    const paths = resolveBuildPaths(configDir, 'kitchen.yaml');
    await expect(
      materialiseArtifacts(configDir, 'kitchen.yaml', 'kitchen', [{ name: 'firmware.bin', data: bytes('app') }, layout([{ name: 'bootloader.bin', offset: '0x1000' }])]),
    ).rejects.toMatchObject({ code: 'invalid_args', message: expect.stringContaining('bootloader.bin') });
    await expect(
      materialiseArtifacts(configDir, 'kitchen.yaml', 'kitchen', [{ name: 'firmware.bin', data: bytes('app') }, layout([{ name: '/etc/passwd', offset: '0x1000' }])]),
    ).rejects.toMatchObject({ code: 'invalid_args' });
    await expect(
      materialiseArtifacts(configDir, 'kitchen.yaml', 'kitchen', [{ name: 'firmware.bin', data: bytes('app') }, layout([{ name: 'firmware.bin', offset: 'early' }])]),
    ).rejects.toMatchObject({ code: 'invalid_args', message: expect.stringContaining('early') });
    await expect(readdir(paths.firmwareDir('kitchen'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('without a flash layout, a stale local idedata is removed (it would point an upload at another build)', async () => {
    const paths = resolveBuildPaths(configDir, 'kitchen.yaml');
    await mkdir(join(paths.idedata('kitchen'), '..'), { recursive: true });
    await writeFile(paths.idedata('kitchen'), '{"prog_path": "/old/firmware.elf", "extra": {"flash_images": []}}');
    await materialiseArtifacts(configDir, 'kitchen.yaml', 'kitchen', [{ name: 'firmware.bin', data: bytes('app') }, platformioIni()]);
    await expect(readFile(paths.idedata('kitchen'))).rejects.toMatchObject({ code: 'ENOENT' });
    // The ini only vouches for a layout: without one it is not written.
    await expect(stat(paths.platformioIni('kitchen'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('writes the build\'s platformio.ini beside the project, older than the idedata, and never among the images', async () => {
    const paths = resolveBuildPaths(configDir, 'kitchen.yaml');
    const result = await materialiseArtifacts(configDir, 'kitchen.yaml', 'kitchen', [...remoteBuild(), platformioIni()]);
    expect(result.serialUploadWarning).toBeUndefined();
    const iniPath = join(paths.buildRoot, 'kitchen', 'platformio.ini');
    expect(paths.platformioIni('kitchen')).toBe(iniPath);
    expect(await readFile(iniPath, 'utf8')).toContain('[env:kitchen]');
    const [ini, ideData] = await Promise.all([stat(iniPath), stat(paths.idedata('kitchen'))]);
    // Dated well before the idedata, whatever the filesystem's timestamp granularity.
    expect(ideData.mtimeMs - ini.mtimeMs).toBeGreaterThanOrEqual(1000);
    expect((await readdir(result.dir)).sort()).toEqual(['bootloader.bin', 'firmware.bin', 'partitions.bin']);

    // esphome (here its simulator) reuses that idedata: the materialised build flashes over serial.
    const upload = await simSerialUpload();
    expect(upload.stdout).not.toContain('Could not match idedata');
    expect(upload.stdout).toMatch(/^Wrote \d+ bytes at 0x00001000$/m);
    expect(upload.stdout).toMatch(/^Wrote \d+ bytes at 0x00008000$/m);
    expect(upload.code).toBe(0);
  });

  it('a layout without a platformio.ini (an older receiver) says so, and the serial upload then fails as esphome would', async () => {
    const paths = resolveBuildPaths(configDir, 'kitchen.yaml');
    const result = await materialiseArtifacts(configDir, 'kitchen.yaml', 'kitchen', remoteBuild());
    expect(result.serialUploadWarning).toMatch(/no platformio\.ini.*serial upload.*regenerate/);
    await expect(stat(paths.platformioIni('kitchen'))).rejects.toMatchObject({ code: 'ENOENT' });
    const upload = await simSerialUpload();
    expect(upload.code).toBe(1);
    expect(upload.stdout).toContain('ERROR Could not match idedata, please report this error');
    expect(upload.stdout).toContain('Not a PlatformIO project');
    expect(upload.stdout).not.toContain('Connecting....');
  });

  it('a layout without a platformio.ini keeps a local build\'s ini (older than the new idedata) and warns of nothing', async () => {
    const paths = resolveBuildPaths(configDir, 'kitchen.yaml');
    await mkdir(join(paths.buildRoot, 'kitchen'), { recursive: true });
    await writeFile(paths.platformioIni('kitchen'), '[env:kitchen]\n; local\n');
    const result = await materialiseArtifacts(configDir, 'kitchen.yaml', 'kitchen', remoteBuild());
    expect(result.serialUploadWarning).toBeUndefined();
    expect(await readFile(paths.platformioIni('kitchen'), 'utf8')).toContain('; local');
  });

  it('refuses a platformio.ini that is not text or over the cap, before writing anything', async () => {
    const paths = resolveBuildPaths(configDir, 'kitchen.yaml');
    await expect(materialiseArtifacts(configDir, 'kitchen.yaml', 'kitchen', [...remoteBuild(), { name: PLATFORMIO_INI_ARTIFACT, data: Buffer.from([0x5b, 0x00, 0x5d]) }])).rejects.toMatchObject({
      code: 'invalid_args',
      message: expect.stringContaining('platformio.ini'),
    });
    await expect(materialiseArtifacts(configDir, 'kitchen.yaml', 'kitchen', [...remoteBuild(), { name: PLATFORMIO_INI_ARTIFACT, data: Buffer.from([0xff, 0xfe, 0x41]) }])).rejects.toMatchObject({
      code: 'invalid_args',
    });
    await expect(materialiseArtifacts(configDir, 'kitchen.yaml', 'kitchen', [...remoteBuild(), platformioIni('x'.repeat(PLATFORMIO_INI_MAX_BYTES + 1))])).rejects.toMatchObject({
      code: 'invalid_args',
      message: expect.stringContaining('cap'),
    });
    await expect(readdir(paths.firmwareDir('kitchen'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(paths.platformioIni('kitchen'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a layout may not name platformio.ini as an image', async () => {
    await expect(
      materialiseArtifacts(configDir, 'kitchen.yaml', 'kitchen', [{ name: 'firmware.bin', data: bytes('app') }, platformioIni(), layout([{ name: PLATFORMIO_INI_ARTIFACT, offset: '0x1000' }])]),
    ).rejects.toMatchObject({ code: 'invalid_args', message: expect.stringContaining('platformio.ini') });
  });
});
