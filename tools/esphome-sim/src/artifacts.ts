import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { storageFileName, type DeviceConfig } from './config.js';
import { ESPHOME_VERSION } from './version.js';

/** Every path of esphome's on-disk contract for one device, in one place so writers and readers agree. */
export interface DevicePaths {
  dataDir: string;
  storage: string;
  buildDir: string;
  /** The PlatformIO project file esphome generates before the build (`build/<name>/platformio.ini`). */
  platformioIni: string;
  /** The generated C++ entry point: its presence is what makes the build dir a project PlatformIO can rerun. */
  mainCpp: string;
  pioenv: string;
  firmwareBin: string;
  factoryBin: string;
  otaBin: string;
  elf: string;
  idedata: string;
  childPid: string;
}

export function devicePaths(device: DeviceConfig, dataDir: string): DevicePaths {
  const buildDir = join(dataDir, 'build', device.name);
  const pioenv = join(buildDir, '.pioenvs', device.name);
  return {
    dataDir,
    storage: join(dataDir, 'storage', storageFileName(device)),
    buildDir,
    platformioIni: join(buildDir, 'platformio.ini'),
    mainCpp: join(buildDir, 'src', 'main.cpp'),
    pioenv,
    firmwareBin: join(pioenv, 'firmware.bin'),
    factoryBin: join(pioenv, 'firmware.factory.bin'),
    otaBin: join(pioenv, 'firmware.ota.bin'),
    elf: join(pioenv, 'firmware.elf'),
    idedata: join(dataDir, 'idedata', `${device.name}.json`),
    childPid: join(dataDir, 'sim-child.pid'),
  };
}

/** Temp file + rename, so a concurrent reader (an upload, a remote download) never sees a torn file. */
export async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** StorageJSON as esphome writes it at the start of a compile (so it exists even when the build fails). */
export function storageJson(device: DeviceConfig, paths: DevicePaths): Record<string, unknown> {
  return {
    storage_version: 1,
    name: device.name,
    friendly_name: device.friendlyName,
    comment: device.comment,
    esphome_version: ESPHOME_VERSION,
    src_version: 1,
    address: device.address,
    web_port: device.webPort,
    esp_platform: device.platform.toUpperCase(),
    build_path: paths.buildDir,
    firmware_bin_path: paths.firmwareBin,
    loaded_integrations: device.integrations,
    loaded_platforms: [],
    no_mdns: false,
    framework: device.framework,
    core_platform: device.platform,
  };
}

export async function writeStorage(device: DeviceConfig, paths: DevicePaths): Promise<void> {
  await writeAtomic(paths.storage, `${JSON.stringify(storageJson(device, paths), null, 2)}\n`);
}

/** Deterministic bytes: same YAML text → same firmware, so tests can compare artefacts across runs. */
export function pseudoRandomBytes(seed: Buffer, size: number): Buffer {
  const out = Buffer.alloc(size);
  const counter = Buffer.alloc(4);
  for (let offset = 0, block = 0; offset < size; block++) {
    counter.writeUInt32BE(block);
    const chunk = createHash('sha256').update(seed).update(counter).digest();
    offset += chunk.copy(out, offset);
  }
  return out;
}

export function yamlSeed(device: DeviceConfig): Buffer {
  return createHash('sha256').update(device.text).digest();
}

const BOOTLOADER_OFFSET = 0x1000;
const APP_OFFSET = 0x10000;

/** firmware.bin/.ota.bin/.factory.bin, firmware.elf and the idedata flash images, all written atomically. */
export async function writeFirmware(device: DeviceConfig, paths: DevicePaths, firmwareBytes: number): Promise<void> {
  const seed = yamlSeed(device);
  const app = pseudoRandomBytes(seed, Math.max(1, Math.floor(firmwareBytes)));
  // ESP app images start with the 0xE9 magic byte; keep that so a sniffing reader is not surprised.
  if (device.platform === 'esp32' || device.platform === 'esp8266') app[0] = 0xe9;
  const bootloader = pseudoRandomBytes(Buffer.concat([seed, Buffer.from('bootloader')]), 4096);
  const partitions = pseudoRandomBytes(Buffer.concat([seed, Buffer.from('partitions')]), 3072);
  const factory = Buffer.alloc(APP_OFFSET + app.length, 0xff);
  bootloader.copy(factory, BOOTLOADER_OFFSET);
  app.copy(factory, APP_OFFSET);
  const layout = flashImageLayout(paths);
  await writeAtomic(layout.bootloader.path, bootloader);
  await writeAtomic(layout.partitions.path, partitions);
  await writeAtomic(paths.elf, Buffer.concat([Buffer.from('\x7fELF-esphome-sim\n'), seed]));
  await writeAtomic(paths.factoryBin, factory);
  await writeAtomic(paths.otaBin, app);
  // firmware.bin last: its presence is what upload checks, so everything else is already in place.
  await writeAtomic(paths.firmwareBin, app);
  await writeIdeData(paths);
}

interface FlashImageEntry {
  path: string;
  offset: string;
}

/** The extra images a build flashes with the app, and where. */
function flashImageLayout(paths: DevicePaths): { bootloader: FlashImageEntry; partitions: FlashImageEntry } {
  return {
    bootloader: { path: join(paths.pioenv, 'bootloader.bin'), offset: '0x1000' },
    partitions: { path: join(paths.pioenv, 'partitions.bin'), offset: '0x8000' },
  };
}

/** `idedata/<name>.json` as `platformio run -t idedata` leaves it for esphome (the fields an upload reads). */
export async function writeIdeData(paths: DevicePaths): Promise<void> {
  const { bootloader, partitions } = flashImageLayout(paths);
  const idedata = { prog_path: paths.elf, extra: { flash_images: [bootloader, partitions] } };
  await writeAtomic(paths.idedata, `${JSON.stringify(idedata, null, 2)}\n`);
}
