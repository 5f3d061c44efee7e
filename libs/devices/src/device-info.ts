import { lstat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { configurationStem } from '@kiln/core';
import { KNOWN_PLATFORMS, normalisePlatform } from './platforms.js';
import { readStorage } from './storage-json.js';
import { asRecord, asString, parseYaml } from './yaml.js';

export interface DeviceInfo {
  configuration: string;
  name: string;
  friendlyName: string;
  /** Lower-case: esp32, esp8266, rp2040, bk72xx, rtl87xx, ln882x, host, or ''. */
  platform: string;
  board: string;
  comment: string;
  address: string;
  /** ESPHome version of the last build (StorageJSON); '' when never built. */
  deployedVersion: string;
  hasBuild: boolean;
  modifiedAtMs: number;
}

export type DeviceEvent = { type: 'device_added' | 'device_updated'; device: DeviceInfo } | { type: 'device_removed'; configuration: string };

/** What the YAML itself says about a device (StorageJSON fills in the rest). */
type YamlFields = Pick<DeviceInfo, 'name' | 'friendlyName' | 'platform' | 'board' | 'comment' | 'address'>;

/**
 * Read one device from disk; undefined when the file is gone or is not a regular file
 * (a symlink or directory named like a device is not listed, so nothing escapes the config dir).
 */
export async function readDeviceInfo(configDir: string, configuration: string): Promise<DeviceInfo | undefined> {
  const path = join(configDir, configuration);
  let text: string;
  let modifiedAtMs: number;
  try {
    const stats = await lstat(path);
    if (!stats.isFile()) return undefined;
    modifiedAtMs = stats.mtimeMs;
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
  const storage = await readStorage(configDir, configuration);
  const parsed = await parseYaml(text);
  // An unparsable YAML still lists, so the user can open and fix it.
  const fields: YamlFields = parsed.ok
    ? fieldsFromYaml(parsed.value)
    : { name: '', friendlyName: '', platform: '', board: '', comment: '', address: '' };
  return {
    configuration,
    name: fields.name || (parsed.ok ? storage.name : '') || configurationStem(configuration),
    friendlyName: fields.friendlyName || (parsed.ok ? storage.friendlyName : ''),
    platform: fields.platform || (parsed.ok ? normalisePlatform(storage.espPlatform) : ''),
    board: fields.board,
    comment: fields.comment,
    address: storage.address || fields.address,
    deployedVersion: storage.esphomeVersion,
    // ESPHome records firmware_bin_path when it compiles; a StorageJSON without it was never built.
    hasBuild: storage.present && storage.firmwareBinPath !== '',
    modifiedAtMs,
  };
}

export function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function fieldsFromYaml(value: unknown): YamlFields {
  const root = asRecord(value) ?? {};
  const subs = asRecord(root['substitutions']) ?? {};
  const sub = (v: unknown): string => substitute(asString(v), subs);
  const esphome = asRecord(root['esphome']) ?? {};
  const platform = KNOWN_PLATFORMS.find((p) => p in root) ?? normalisePlatform(esphome['platform']);
  // Legacy configs put `platform`/`board` under `esphome:` instead of a platform block.
  const platformBlock = platform ? asRecord(root[platform]) : undefined;
  const wifi = asRecord(root['wifi']) ?? asRecord(root['ethernet']) ?? {};
  return {
    name: sub(esphome['name']),
    friendlyName: sub(esphome['friendly_name']),
    platform,
    board: sub(platformBlock?.['board'] ?? esphome['board']),
    comment: sub(esphome['comment']),
    address: sub(wifi['use_address']),
  };
}

/** Expand `${var}` and `$var` from `substitutions:` so a templated name reads as ESPHome sees it. */
function substitute(text: string, subs: Record<string, unknown>): string {
  if (!text.includes('$')) return text;
  return text.replace(/\$\{([A-Za-z0-9_]+)\}|\$([A-Za-z0-9_]+)/g, (whole, braced: string | undefined, bare: string | undefined) => {
    const key = braced ?? bare ?? '';
    return key in subs ? asString(subs[key]) : whole;
  });
}
