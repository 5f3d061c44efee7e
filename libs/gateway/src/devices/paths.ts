import { join } from 'node:path';

/** Where ESPHome keeps per-device state next to the YAML files. */
export function storageDir(configDir: string): string {
  return join(configDir, '.esphome', 'storage');
}

export function storagePath(configDir: string, configuration: string): string {
  return join(storageDir(configDir), `${configuration}.json`);
}

export function buildPath(configDir: string, deviceName: string): string {
  return join(configDir, '.esphome', 'build', deviceName);
}

/** `x.yaml.json` in the storage dir belongs to configuration `x.yaml`. */
export function configurationOfStorageFile(file: string): string | undefined {
  return file.endsWith('.json') ? file.slice(0, -'.json'.length) : undefined;
}

const SECRETS = new Set(['secrets.yaml', 'secrets.yml']);

/** Device files are visible .yaml/.yml files other than secrets; subdirectories are checked by the caller. */
export function isDeviceFileName(file: string): boolean {
  return /\.ya?ml$/.test(file) && !file.startsWith('.') && !SECRETS.has(file);
}

export function stem(configuration: string): string {
  return configuration.replace(/\.ya?ml$/, '');
}
