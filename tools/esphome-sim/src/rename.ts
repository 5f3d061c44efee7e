import { access, rename as move, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { devicePaths } from './artifacts.js';
import { compile } from './compile.js';
import { dataDirFor, type DeviceConfig } from './config.js';
import type { ResolvedKnobs } from './knobs.js';
import { line, startPhase } from './out.js';
import { upload } from './upload.js';

/** esphome's rule for device names (they become host names). */
const VALID_NAME = /^[a-z0-9-]{1,31}$/;

/**
 * `esphome rename`: write `<new>.yaml` with the new name, build it, flash it over the air to the
 * device's current address, then remove the old YAML. On failure the new YAML is removed instead.
 */
export async function rename(device: DeviceConfig, newName: string, knobs: ResolvedKnobs): Promise<number> {
  if (!VALID_NAME.test(newName)) {
    await line(`ERROR Invalid name: ${newName} (lowercase letters, digits and hyphens, at most 31 characters)`);
    return 1;
  }
  const target = join(dirname(device.path), `${newName}.yaml`);
  if (await exists(target)) {
    await line(`ERROR File ${target} already exists`);
    return 1;
  }
  const text = device.text.replace(new RegExp(`(^\\s*name:\\s*["']?)${escape(device.name)}(["']?\\s*$)`, 'm'), `$1${newName}$2`);
  if (text === device.text) {
    await line(`ERROR Could not find the name ${device.name} in ${device.path}`);
    return 1;
  }
  await line(`INFO Renaming ${device.name} to ${newName}`);
  const tmp = `${target}.tmp`;
  await writeFile(tmp, text);
  await move(tmp, target);
  const renamed: DeviceConfig = { ...device, path: target, text, name: newName, address: `${newName}.local` };
  const paths = devicePaths(renamed, dataDirFor(renamed, process.env));
  const compiled = await compile(renamed, paths, knobs);
  startPhase();
  const uploaded = compiled === 0 ? await upload(renamed, paths, device.address, knobs) : compiled;
  if (uploaded !== 0) {
    await rm(target, { force: true });
    await line(`ERROR Rename failed; ${target} removed`);
    return uploaded;
  }
  await rm(device.path, { force: true });
  await line(`INFO Successfully renamed ${device.name} to ${newName}`);
  return 0;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
