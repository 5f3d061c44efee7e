import { readdir, readFile, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { assertSafeId, KilnError, pathExists, resolveBuildPaths, writeFileAtomic } from '@kiln/core';
import { FLASH_LAYOUT_ARTIFACT, parseFlashLayout, parsePlatformioIni, PLATFORMIO_INI_ARTIFACT, type IdeData } from '@kiln/toolchain';

export interface ArtifactFile {
  name: string;
  data: Uint8Array;
}

export interface MaterialisedBuild {
  /** The images' directory. */
  dir: string;
  /**
   * Set when a serial upload with the real esphome will not take the layout as materialised: a
   * layout came without a platformio.ini (a receiver from before it was sent) and there is no local
   * one, so esphome will re-run `platformio run -t idedata` in a build dir without a project.
   */
  serialUploadWarning?: string;
}

/** How much older than the idedata the platformio.ini is made: well over any filesystem's timestamp granularity. */
const INI_AGE_MS = 2000;

/**
 * Put a remote compile's images where a local build of the configuration would have left them (the
 * ONE resolver's firmware dir for `deviceName`), so the local upload lane flashes them unchanged and
 * get_binaries lists them. Images of an earlier build that this one did not produce are removed;
 * the StorageJSON names the device (it is how readers find the images), keeping what a local build
 * wrote there. The flash layout (FLASH_LAYOUT_ARTIFACT) becomes the local idedata, naming the images
 * by their local paths (a serial upload flashes them at their offsets); without one, a stale local
 * idedata is removed so it cannot point an upload at another build's layout.
 *
 * The build's platformio.ini (PLATFORMIO_INI_ARTIFACT) goes with the layout: esphome's serial upload
 * reuses the idedata only when `build/<name>/platformio.ini` exists and is strictly older, and here
 * there is no PlatformIO project to regenerate it from. So the ini is written first and then dated
 * INI_AGE_MS before the idedata. It is ignored without a layout (it only vouches for one). A layout
 * without an ini keeps a local ini (a local build's, older than the idedata just written); with
 * none, the result says a serial upload with the real esphome will fail. Every file is written
 * atomically; nothing is written when an artifact is refused.
 */
export async function materialiseArtifacts(configDir: string, configuration: string, deviceName: string, artifacts: readonly ArtifactFile[]): Promise<MaterialisedBuild> {
  assertSafeId('device_name', deviceName);
  const paths = resolveBuildPaths(configDir, configuration);
  const dir = paths.firmwareDir(deviceName);
  const layoutArtifact = artifacts.find((a) => a.name === FLASH_LAYOUT_ARTIFACT);
  const iniArtifact = artifacts.find((a) => a.name === PLATFORMIO_INI_ARTIFACT);
  const images = artifacts.filter((a) => a !== layoutArtifact && a !== iniArtifact);
  // Parsed before anything is written: a bad layout or ini leaves the previous build's files untouched.
  const layout = layoutArtifact ? parseFlashLayout(layoutArtifact.data) : undefined;
  const ini = layout && iniArtifact ? parsePlatformioIni(iniArtifact.data) : undefined;
  const names = new Set(images.map((a) => a.name));
  const missing = layout?.flashImages.find((image) => !names.has(image.name));
  if (missing) throw new KilnError('invalid_args', `${FLASH_LAYOUT_ARTIFACT} lists ${missing.name}, which was not sent`, { name: missing.name });
  for (const stale of (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.bin') && !names.has(n))) {
    await rm(join(dir, stale), { force: true });
  }
  for (const artifact of images) await writeFileAtomic(join(dir, artifact.name), artifact.data);
  let serialUploadWarning: string | undefined;
  if (layout) {
    // The resolver's fixed path (the device name is a checked safe id): never outside the build dir.
    const iniPath = paths.platformioIni(deviceName);
    if (ini !== undefined) await writeFileAtomic(iniPath, ini);
    const ideData: IdeData = {
      prog_path: join(dir, 'firmware.elf'),
      extra: { flash_images: layout.flashImages.map(({ name, offset }) => ({ path: join(dir, name), offset })) },
    };
    const ideDataPath = paths.idedata(deviceName);
    await writeFileAtomic(ideDataPath, `${JSON.stringify(ideData, null, 2)}\n`);
    if (ini !== undefined) {
      const older = new Date((await stat(ideDataPath)).mtimeMs - INI_AGE_MS);
      await utimes(iniPath, older, older);
    } else if (!(await pathExists(iniPath))) {
      serialUploadWarning = `the receiver sent no ${PLATFORMIO_INI_ARTIFACT} (a Kiln from before it was sent): a serial upload with the real esphome will try to regenerate ${ideDataPath} and fail; OTA is unaffected`;
    }
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
  return { dir, serialUploadWarning };
}
