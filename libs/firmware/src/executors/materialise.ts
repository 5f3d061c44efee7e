import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { assertSafeId, KilnError, writeFileAtomic } from '@kiln/core';
import { FLASH_LAYOUT_ARTIFACT, parseFlashLayout, resolveBuildPaths, type IdeData } from '@kiln/toolchain';

export interface ArtifactFile {
  name: string;
  data: Uint8Array;
}

/**
 * Put a remote compile's images where a local build of the configuration would have left them (the
 * ONE resolver's firmware dir for `deviceName`), so the local upload lane flashes them unchanged and
 * get_binaries lists them. Images of an earlier build that this one did not produce are removed;
 * the StorageJSON names the device (it is how readers find the images), keeping what a local build
 * wrote there. The flash layout (FLASH_LAYOUT_ARTIFACT) becomes the local idedata, naming the images
 * by their local paths (a serial upload flashes them at their offsets); without one, a stale local
 * idedata is removed so it cannot point an upload at another build's layout. Every file is written
 * atomically. Returns the images' directory.
 */
export async function materialiseArtifacts(configDir: string, configuration: string, deviceName: string, artifacts: readonly ArtifactFile[]): Promise<string> {
  assertSafeId('device_name', deviceName);
  const paths = resolveBuildPaths(configDir, configuration);
  const dir = paths.firmwareDir(deviceName);
  const layoutArtifact = artifacts.find((a) => a.name === FLASH_LAYOUT_ARTIFACT);
  const images = artifacts.filter((a) => a !== layoutArtifact);
  // Parsed before anything is written: a bad layout leaves the previous build's files untouched.
  const layout = layoutArtifact ? parseFlashLayout(layoutArtifact.data) : undefined;
  const names = new Set(images.map((a) => a.name));
  const missing = layout?.flashImages.find((image) => !names.has(image.name));
  if (missing) throw new KilnError('invalid_args', `${FLASH_LAYOUT_ARTIFACT} lists ${missing.name}, which was not sent`, { name: missing.name });
  for (const stale of (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.bin') && !names.has(n))) {
    await rm(join(dir, stale), { force: true });
  }
  for (const artifact of images) await writeFileAtomic(join(dir, artifact.name), artifact.data);
  if (layout) {
    const ideData: IdeData = {
      prog_path: join(dir, 'firmware.elf'),
      extra: { flash_images: layout.flashImages.map(({ name, offset }) => ({ path: join(dir, name), offset })) },
    };
    await writeFileAtomic(paths.idedata(deviceName), `${JSON.stringify(ideData, null, 2)}\n`);
  } else {
    await rm(paths.idedata(deviceName), { force: true });
  }
  let storage: Record<string, unknown> = {};
  try {
    const parsed = JSON.parse(await readFile(paths.storage, 'utf8')) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) storage = parsed as Record<string, unknown>;
  } catch {
    // none yet (never built here) or unreadable: written fresh below
  }
  await writeFileAtomic(
    paths.storage,
    `${JSON.stringify({ storage_version: 1, ...storage, name: deviceName, firmware_bin_path: paths.firmwareBin(deviceName), build_path: join(paths.buildRoot, deviceName) }, null, 2)}\n`,
  );
  return dir;
}
