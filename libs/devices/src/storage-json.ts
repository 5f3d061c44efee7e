import { readFile } from 'node:fs/promises';
import { storageJsonPath } from '@kiln/core';
import { asRecord, asString } from './yaml.js';

/** The StorageJSON fields the registry shows; all '' when ESPHome never wrote one. */
export interface StorageInfo {
  present: boolean;
  name: string;
  friendlyName: string;
  espPlatform: string;
  address: string;
  esphomeVersion: string;
  firmwareBinPath: string;
}

const ABSENT: StorageInfo = { present: false, name: '', friendlyName: '', espPlatform: '', address: '', esphomeVersion: '', firmwareBinPath: '' };

/** A missing or corrupt StorageJSON reads as absent: it is a cache ESPHome rewrites on the next build. */
export async function readStorage(configDir: string, configuration: string): Promise<StorageInfo> {
  let text: string;
  try {
    text = await readFile(storageJsonPath(configDir, configuration), 'utf8');
  } catch {
    return ABSENT;
  }
  let json: Record<string, unknown> | undefined;
  try {
    json = asRecord(JSON.parse(text));
  } catch {
    json = undefined;
  }
  if (!json) return ABSENT;
  return {
    present: true,
    name: asString(json['name']),
    friendlyName: asString(json['friendly_name']),
    espPlatform: asString(json['esp_platform']),
    address: asString(json['address']),
    esphomeVersion: asString(json['esphome_version']),
    firmwareBinPath: asString(json['firmware_bin_path']),
  };
}
