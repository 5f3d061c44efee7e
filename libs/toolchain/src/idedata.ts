import { readFile } from 'node:fs/promises';
import { isArtifactName, KilnError } from '@kiln/core';

/**
 * A device's flash layout as it travels with a remote compile's images: image names relative to the
 * artifact set and their flash offsets, never a path of the host that built them. esphome's own
 * idedata (`idedata/<name>.json`) holds absolute paths, so each side converts at its edge.
 */
export interface FlashLayout {
  flashImages: { name: string; offset: string }[];
}

/** The artifact that carries the flash layout (it is not an image: materialisers turn it into idedata). */
export const FLASH_LAYOUT_ARTIFACT = 'idedata.json';

/**
 * The artifact that carries the build's `build/<name>/platformio.ini` (not an image either). esphome's
 * serial upload reuses the saved idedata only while that file exists and is older than the idedata;
 * otherwise it re-runs `platformio run -t idedata`, which fails where only images were received.
 */
export const PLATFORMIO_INI_ARTIFACT = 'platformio.ini';

/** esphome generates a few KiB; anything near this is not a platformio.ini. */
export const PLATFORMIO_INI_MAX_BYTES = 256 * 1024;

/** Artifact names that are never images. */
const RESERVED_ARTIFACTS: ReadonlySet<string> = new Set([FLASH_LAYOUT_ARTIFACT, PLATFORMIO_INI_ARTIFACT]);

/** The part of esphome's idedata an upload reads: the elf, and the extra images flashed with the app. */
export interface IdeData {
  prog_path: string;
  extra: { flash_images: { path: string; offset: string }[] };
}

const OFFSET = /^0x[0-9a-fA-F]{1,8}$/;

/** esphome's idedata at `path`, validated; undefined when the build wrote none. */
export async function readIdeData(path: string): Promise<IdeData | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new KilnError('internal_error', `idedata ${path} is not JSON`, { path });
  }
  const record = raw as { prog_path?: unknown; extra?: { flash_images?: unknown } } | null;
  const images = record?.extra?.flash_images ?? [];
  if (typeof record?.prog_path !== 'string' || !Array.isArray(images)) throw new KilnError('internal_error', `idedata ${path} lacks prog_path or extra.flash_images`, { path });
  const flashImages = images.map((image: unknown) => {
    const { path: imagePath, offset } = (image ?? {}) as { path?: unknown; offset?: unknown };
    if (typeof imagePath !== 'string' || typeof offset !== 'string' || !OFFSET.test(offset)) {
      throw new KilnError('internal_error', `idedata ${path}: flash image ${JSON.stringify(image)} needs a path and a hex offset`, { path });
    }
    return { path: imagePath, offset };
  });
  return { prog_path: record.prog_path, extra: { flash_images: flashImages } };
}

/** Parse a received flash layout, refusing anything but bare image names and hex offsets. */
export function parseFlashLayout(data: Uint8Array): FlashLayout {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(data).toString('utf8'));
  } catch {
    throw new KilnError('invalid_args', `${FLASH_LAYOUT_ARTIFACT} is not JSON`, {});
  }
  const images = (raw as { flashImages?: unknown } | null)?.flashImages;
  if (!Array.isArray(images)) throw new KilnError('invalid_args', `${FLASH_LAYOUT_ARTIFACT} lacks flashImages`, {});
  return {
    flashImages: images.map((image: unknown) => {
      const { name, offset } = (image ?? {}) as { name?: unknown; offset?: unknown };
      if (!isArtifactName(name) || RESERVED_ARTIFACTS.has(name)) {
        throw new KilnError('invalid_args', `${FLASH_LAYOUT_ARTIFACT}: image name ${JSON.stringify(name)} is not a bare file name`, { name: String(name) });
      }
      if (typeof offset !== 'string' || !OFFSET.test(offset)) {
        throw new KilnError('invalid_args', `${FLASH_LAYOUT_ARTIFACT}: offset ${JSON.stringify(offset)} of ${name} is not a hex offset`, { name });
      }
      return { name, offset };
    }),
  };
}

/**
 * A received platformio.ini: size-capped UTF-8 text. esphome only stats the file, but it lands in
 * the build dir where a later local compile (and PlatformIO) reads it, so nothing else is accepted.
 */
export function parsePlatformioIni(data: Uint8Array): string {
  if (data.length > PLATFORMIO_INI_MAX_BYTES) {
    throw new KilnError('invalid_args', `${PLATFORMIO_INI_ARTIFACT} is ${data.length} bytes, over the ${PLATFORMIO_INI_MAX_BYTES}-byte cap`, { size: data.length, max: PLATFORMIO_INI_MAX_BYTES });
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    throw new KilnError('invalid_args', `${PLATFORMIO_INI_ARTIFACT} is not UTF-8 text`, {});
  }
  // Text as PlatformIO reads it: no NUL or other control characters besides tab and line breaks.
  if (/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(text)) throw new KilnError('invalid_args', `${PLATFORMIO_INI_ARTIFACT} holds control characters, not text`, {});
  return text;
}
