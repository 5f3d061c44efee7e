import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { remotePb as pb } from '@kiln/contracts';
import { builtDeviceName, isArtifactName, KilnError } from '@kiln/core';
import { FLASH_LAYOUT_ARTIFACT, PLATFORMIO_INI_ARTIFACT, readIdeData, type FlashLayout } from '@kiln/toolchain';
import type { Build } from './builds.js';

export interface Artifact {
  name: string;
  data: Buffer;
  sha256: string;
}

/**
 * The images of a completed compile (the `.bin` files of its device's `.pioenvs/<name>/`), plus its
 * flash layout (FLASH_LAYOUT_ARTIFACT: the idedata's extra images by artifact name and offset, so an
 * offloader can flash over serial) and the build's platformio.ini (PLATFORMIO_INI_ARTIFACT: esphome's
 * serial upload reuses a saved idedata only when that file exists and is older). A flash image outside the pioenv dir (esphome points at e.g.
 * boot_app0.bin in the framework package) is sent too, under a name unique to its path; no receiver
 * path crosses. Read whole (bounded by `maxBytes`), so the hash sent is the hash of exactly the bytes sent.
 */
export async function readArtifacts(build: Build, maxBytes: number): Promise<Artifact[]> {
  if (build.action !== pb.BuildAction.BUILD_ACTION_COMPILE || build.status !== pb.BuildStatus.BUILD_STATUS_COMPLETED) {
    throw new KilnError('failed_precondition', `build ${build.id} is not a completed compile`, { build_id: build.id });
  }
  const deviceName = await builtDeviceName(build.paths);
  const dir = deviceName === undefined ? undefined : build.paths.firmwareDir(deviceName);
  const names = dir ? (await readdir(dir).catch(() => [])).filter((n) => n.endsWith('.bin')).sort() : [];
  if (!dir || !deviceName || names.length === 0) throw new KilnError('not_found', `build ${build.id} left no firmware images (build dir missing or swept)`, { build_id: build.id });
  const files = new Map(names.map((name) => [name, join(dir, name)]));
  const ideData = await readIdeData(build.paths.idedata(deviceName));
  let layout: Buffer | undefined;
  if (ideData) {
    const flashLayout: FlashLayout = { flashImages: [] };
    for (const image of ideData.extra.flash_images) {
      const name = dirname(image.path) === dir && isArtifactName(basename(image.path)) ? basename(image.path) : externalName(image.path);
      files.set(name, image.path);
      flashLayout.flashImages.push({ name, offset: image.offset });
    }
    layout = Buffer.from(`${JSON.stringify(flashLayout, null, 2)}\n`);
  }
  // Sent whenever the build has one: it is what lets the offloader's esphome trust the layout above.
  const platformioIni = await readFile(build.paths.platformioIni(deviceName)).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  let total = (layout?.length ?? 0) + (platformioIni?.length ?? 0);
  for (const [name, path] of files) {
    const size = await stat(path).then(
      (s) => s.size,
      () => {
        throw new KilnError('not_found', `build ${build.id}: flash image ${name} listed in its idedata is missing`, { build_id: build.id, name });
      },
    );
    total += size;
  }
  if (total > maxBytes) throw new KilnError('failed_precondition', `artifacts of build ${build.id} are ${total} bytes, over the ${maxBytes}-byte cap`, { build_id: build.id, total, maxBytes });
  const artifacts: Artifact[] = [];
  for (const [name, path] of files) artifacts.push(artifact(name, await readFile(path)));
  if (layout) artifacts.push(artifact(FLASH_LAYOUT_ARTIFACT, layout));
  if (platformioIni) artifacts.push(artifact(PLATFORMIO_INI_ARTIFACT, platformioIni));
  return artifacts;
}

function artifact(name: string, data: Buffer): Artifact {
  return { name, data, sha256: createHash('sha256').update(data).digest('hex') };
}

/** A name for an image from outside the pioenv dir: unique to its path, a bare artifact name, still `.bin`. */
function externalName(path: string): string {
  const stem = basename(path).replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[^A-Za-z0-9]+/, '').slice(0, 80) || 'image';
  return `extra-${createHash('sha256').update(path).digest('hex').slice(0, 12)}-${stem}`;
}
