import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FLASH_LAYOUT_ARTIFACT, resolveBuildPaths } from '@kiln/toolchain';
import { materialiseArtifacts } from '../src/executors/materialise.js';

const bytes = (text: string): Buffer => Buffer.from(text);
const layout = (flashImages: { name: string; offset: string }[]) => ({ name: FLASH_LAYOUT_ARTIFACT, data: bytes(JSON.stringify({ flashImages })) });

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
    const dir = await materialiseArtifacts(configDir, 'kitchen.yaml', 'kitchen', [
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
    await materialiseArtifacts(configDir, 'kitchen.yaml', 'kitchen', [{ name: 'firmware.bin', data: bytes('app') }]);
    await expect(readFile(paths.idedata('kitchen'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
