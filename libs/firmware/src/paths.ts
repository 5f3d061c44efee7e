import { join } from 'node:path';
import { assertConfigurationName } from '@kiln/core';

/**
 * Where one configuration's build lives. ONE resolver for every reader and writer: the toolchain
 * gets `dataDir` as ESPHOME_DATA_DIR, and storage/idedata/firmware paths are derived from it.
 */
export interface BuildPaths {
  /** The device YAML. */
  yaml: string;
  /** ESPHOME_DATA_DIR for this build. */
  dataDir: string;
  /** StorageJSON: `<dataDir>/storage/<file>.yaml.json`. */
  storage: string;
  buildRoot: string;
  idedata(deviceName: string): string;
  firmwareBin(deviceName: string): string;
}

/** ESPHome's own default: the data dir is `.esphome` inside the config dir. */
export function resolveBuildPaths(configDir: string, configuration: string): BuildPaths {
  assertConfigurationName('configuration', configuration);
  const dataDir = join(configDir, '.esphome');
  return {
    yaml: join(configDir, configuration),
    dataDir,
    storage: join(dataDir, 'storage', `${configuration}.json`),
    buildRoot: join(dataDir, 'build'),
    idedata: (name) => join(dataDir, 'idedata', `${name}.json`),
    firmwareBin: (name) => join(dataDir, 'build', name, '.pioenvs', name, 'firmware.bin'),
  };
}
