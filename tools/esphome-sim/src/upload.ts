import { readFile, stat } from 'node:fs/promises';
import { isIP } from 'node:net';
import { yamlSeed, type DevicePaths } from './artifacts.js';
import type { DeviceConfig } from './config.js';
import type { ResolvedKnobs } from './knobs.js';
import { hangForever, line, sleepUntilPhase, write } from './out.js';
import { ESPHOME_VERSION } from './version.js';

const APP_OFFSET = 0x10000;
const ESPTOOL_BLOCK = 16 * 1024;
const OTA_UPDATES = 20;
const OTA_BAR = 60;

/** Serial ports look like esptool targets; everything else (an IP, a hostname, `OTA`) is an OTA upload. */
export function isSerialPort(port: string): boolean {
  return port.startsWith('/dev/tty') || /^COM\d+$/i.test(port);
}

/** `esphome upload`: needs the firmware a compile produced, then speaks esptool or OTA depending on the port. */
export async function upload(device: DeviceConfig, paths: DevicePaths, port: string, knobs: ResolvedKnobs): Promise<number> {
  let size: number;
  try {
    size = (await stat(paths.firmwareBin)).size;
  } catch {
    await line(`ERROR Firmware not found at ${paths.firmwareBin}`);
    return 1;
  }
  return isSerialPort(port) ? esptool(device, paths, port, size, knobs) : ota(device, paths, port, size, knobs);
}

interface FlashImage {
  path: string;
  offset: number;
  size: number;
}

/**
 * What esphome's esptool upload flashes: the app (the `.bin` beside idedata's `prog_path`) and the
 * idedata's extra images at their offsets. Like esphome, it takes the layout from the idedata, so a
 * missing idedata or a listed image that is not on disk fails here, before esptool connects.
 */
async function flashImages(paths: DevicePaths): Promise<{ app: FlashImage; extra: FlashImage[] } | string> {
  let ideData: { prog_path?: unknown; extra?: { flash_images?: { path?: unknown; offset?: unknown }[] } };
  try {
    ideData = JSON.parse(await readFile(paths.idedata, 'utf8')) as typeof ideData;
  } catch {
    return `ERROR idedata not found (or unreadable) at ${paths.idedata}`;
  }
  const sizeOf = (path: string): Promise<number | undefined> => stat(path).then((s) => s.size, () => undefined);
  if (typeof ideData.prog_path !== 'string') return `ERROR idedata ${paths.idedata} has no prog_path`;
  const appPath = ideData.prog_path.replace(/\.elf$/, '.bin');
  const appSize = await sizeOf(appPath);
  if (appSize === undefined) return `ERROR Firmware ${appPath} (from idedata prog_path) not found`;
  const extra: FlashImage[] = [];
  for (const image of ideData.extra?.flash_images ?? []) {
    const path = typeof image.path === 'string' ? image.path : '';
    const offset = typeof image.offset === 'string' ? Number.parseInt(image.offset, 16) : Number.NaN;
    const size = path ? await sizeOf(path) : undefined;
    if (size === undefined || Number.isNaN(offset)) return `ERROR Flash image ${JSON.stringify(image.path)} at ${String(image.offset)} listed in ${paths.idedata} not found`;
    extra.push({ path, offset, size });
  }
  return { app: { path: appPath, offset: APP_OFFSET, size: appSize }, extra };
}

async function esptool(device: DeviceConfig, paths: DevicePaths, port: string, size: number, knobs: ResolvedKnobs): Promise<number> {
  const chip = device.platform === 'esp8266' ? 'ESP8266' : 'ESP32';
  const images = await flashImages(paths);
  if (typeof images === 'string') {
    await line(images);
    return 1;
  }
  await line('esptool.py v4.8.1');
  await line(`Serial port ${port}`);
  await line('Connecting....');
  if (knobs.failUpload) {
    await line(`A fatal error occurred: Failed to connect to ${chip}: No serial data received. (simulated: esphome-sim knob failUpload)`);
    await line(`ERROR Failed to upload to ['${port}']`);
    return 1;
  }
  const mac = macFor(device);
  await line(`Chip is ${chip === 'ESP32' ? 'ESP32-D0WD-V3 (revision v3.1)' : 'ESP8266EX'}`);
  await line(`MAC: ${mac}`);
  await line('Uploading stub...');
  await line('Running stub...');
  await line('Stub running...');
  await line('Changing baud rate to 460800');
  await line('Changed.');
  for (const image of images.extra) {
    await line(`Wrote ${image.size} bytes at 0x${hex8(image.offset)}`);
  }
  const compressed = Math.max(1, Math.floor(size * 0.65));
  const blocks = Math.max(1, Math.ceil(compressed / ESPTOOL_BLOCK));
  const end = APP_OFFSET + size;
  await line(`Flash will be erased from 0x${hex8(APP_OFFSET)} to 0x${hex8(Math.ceil(end / 4096) * 4096 - 1)}...`);
  await line(`Compressed ${size} bytes to ${compressed}...`);
  const startedAt = Date.now();
  for (let block = 0; block < blocks; block++) {
    if (knobs.hang === 'upload' && block === Math.floor(blocks * 0.3)) await hangForever();
    await sleepUntilPhase(((block + 1) * knobs.uploadMs) / blocks);
    const percent = Math.floor(((block + 1) / blocks) * 100);
    await line(`Writing at 0x${hex8(APP_OFFSET + Math.floor((block * size) / blocks))}... (${percent} %)`);
  }
  const seconds = Math.max(0.01, (Date.now() - startedAt) / 1000);
  await line(
    `Wrote ${size} bytes (${compressed} compressed) at 0x${hex8(APP_OFFSET)} in ${seconds.toFixed(1)} seconds (effective ${((size * 8) / seconds / 1000).toFixed(1)} kbit/s)...`,
  );
  await line('Hash of data verified.');
  await line('');
  await line('Leaving...');
  await line('Hard resetting via RTS pin...');
  await line('INFO Successfully uploaded program.');
  return 0;
}

async function ota(device: DeviceConfig, paths: DevicePaths, port: string, size: number, knobs: ResolvedKnobs): Promise<number> {
  let ip = port;
  if (isIP(port) === 0) {
    const host = port.toUpperCase() === 'OTA' ? device.address : port;
    const seed = yamlSeed(device);
    ip = `192.168.${seed[1] ?? 1}.${((seed[2] ?? 0) % 250) + 2}`;
    await line(`INFO Resolving IP address of ${host}`);
    await line(`INFO  -> ${ip}`);
  }
  await line(`INFO Connecting to ${ip} port 3232...`);
  if (knobs.failUpload) {
    await line(`ERROR Connecting to ${ip} port 3232 failed: [Errno 111] Connection refused (simulated: esphome-sim knob failUpload)`);
    return 1;
  }
  await line(`INFO Connected to ESPHome with version ${ESPHOME_VERSION}`);
  await line(`INFO Uploading ${paths.firmwareBin} (${size} bytes)`);
  const startedAt = Date.now();
  // esphome redraws one progress line with '\r'; each redraw is written (and so flushed) on its own.
  for (let update = 1; update <= OTA_UPDATES; update++) {
    if (knobs.hang === 'upload' && update === Math.floor(OTA_UPDATES * 0.3)) await hangForever();
    await sleepUntilPhase((update * knobs.uploadMs) / OTA_UPDATES);
    const percent = Math.floor((update / OTA_UPDATES) * 100);
    const filled = Math.round((percent / 100) * OTA_BAR);
    const status = update === OTA_UPDATES ? 'Done...\r\n' : '';
    await write(`\rUploading: [${'='.repeat(filled)}${' '.repeat(OTA_BAR - filled)}] ${percent}% ${status}`);
  }
  await line(`INFO Upload took ${((Date.now() - startedAt) / 1000).toFixed(2)} seconds, waiting for result...`);
  await line('INFO OTA successful');
  await line('INFO Successfully uploaded program.');
  return 0;
}

function hex8(value: number): string {
  return value.toString(16).padStart(8, '0');
}

function macFor(device: DeviceConfig): string {
  const seed = yamlSeed(device);
  return ['24', '0a', 'c4', ...[3, 4, 5].map((i) => (seed[i] ?? 0).toString(16).padStart(2, '0'))].join(':');
}
