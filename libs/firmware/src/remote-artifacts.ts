import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { MAX_REMOTE_ARTIFACTS_BYTES, type firmwarePb as pb } from '@kiln/contracts';
import { builtDeviceName, KilnError, resolveBuildPaths, type BuildPaths } from '@kiln/core';
import { readIdeData } from '@kiln/toolchain';

/** Where esphome's esptool upload flashes the app image: 0x10000 on an ESP32, 0x0 on an ESP8266 (`firmware_offset` in esphome). */
export const APP_IMAGE_OFFSET = 0x10000;
const ESP8266_APP_IMAGE_OFFSET = 0x0;

/**
 * The app image's offset for this build: an ESP8266 build (its platformio.ini names the espressif8266
 * platform — a remote compile's came with its images — or, without one, its StorageJSON says so)
 * flashes at 0x0, anything else at APP_IMAGE_OFFSET.
 */
async function appImageOffset(paths: BuildPaths, device: string): Promise<number> {
  const ini = await readFile(paths.platformioIni(device), 'utf8').catch(() => undefined);
  const platform = ini ? /^\s*platform\s*=\s*(\S+)/m.exec(ini)?.[1] : undefined;
  if (platform !== undefined) return /espressif8266/i.test(platform) ? ESP8266_APP_IMAGE_OFFSET : APP_IMAGE_OFFSET;
  const storage = await readFile(paths.storage, 'utf8').then((t) => JSON.parse(t) as { esp_platform?: unknown; target_platform?: unknown }, () => undefined);
  const target = String(storage?.esp_platform ?? storage?.target_platform ?? '');
  return target.toUpperCase() === 'ESP8266' ? ESP8266_APP_IMAGE_OFFSET : APP_IMAGE_OFFSET;
}

/**
 * The flash images of a configuration's last build as a serial upload flashes them: the app
 * (`firmware.bin`) at its offset (appImageOffset), then the local idedata's extra images at their offsets (for
 * a remote compile, materialiseArtifacts wrote both). Every image lives in the build's firmware dir,
 * so firmware/read_artifact reads it by name. At most MAX_REMOTE_ARTIFACTS_BYTES in all.
 */
export async function remoteJobArtifacts(configDir: string, configuration: string): Promise<pb.RemoteArtifactImage[]> {
  const paths = resolveBuildPaths(configDir, configuration);
  const device = await builtDeviceName(paths);
  if (!device) throw new KilnError('failed_precondition', `${configuration} has no build on record (no StorageJSON at ${paths.storage})`, { configuration });
  const dir = paths.firmwareDir(device);
  const ideData = await readIdeData(paths.idedata(device));
  const layout = [
    { path: paths.firmwareBin(device), offset: await appImageOffset(paths, device) },
    ...(ideData?.extra.flash_images ?? []).map((image) => ({ path: image.path, offset: Number.parseInt(image.offset, 16) })),
  ];
  const images: pb.RemoteArtifactImage[] = [];
  let total = 0;
  for (const { path, offset } of layout) {
    if (dirname(path) !== dir) throw new KilnError('failed_precondition', `flash image ${path} of ${configuration} is not in its firmware directory ${dir}`, { configuration, path });
    const data = await readFile(path).catch(() => undefined);
    if (!data) throw new KilnError('failed_precondition', `flash image ${basename(path)} of ${configuration} is missing (${path})`, { configuration, path });
    total += data.length;
    if (total > MAX_REMOTE_ARTIFACTS_BYTES) {
      throw new KilnError('failed_precondition', `the images of ${configuration} exceed ${MAX_REMOTE_ARTIFACTS_BYTES} bytes: download them one by one with firmware/download_token`, { configuration, limit: MAX_REMOTE_ARTIFACTS_BYTES });
    }
    images.push({ name: basename(path), offset, size: data.length, sha256: createHash('sha256').update(data).digest('hex') });
  }
  return images;
}
