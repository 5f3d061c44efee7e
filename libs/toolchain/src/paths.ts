import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertConfigurationName, assertSafeId, isSafeId } from '@kiln/core';

/**
 * Where one configuration's build lives. ONE resolver for every reader and writer: the toolchain
 * gets `dataDir` as ESPHOME_DATA_DIR, and storage/idedata/firmware paths are derived from it.
 */
export interface BuildPaths {
  /** The device YAML. */
  yaml: string;
  /** The directory holding the YAML and what it includes (the config dir, or a remote build's sources). */
  sourceDir: string;
  /** ESPHOME_DATA_DIR for this build. */
  dataDir: string;
  /** StorageJSON: `<dataDir>/storage/<file>.yaml.json`. */
  storage: string;
  buildRoot: string;
  /** esphome's generated PlatformIO project file: `<buildRoot>/<name>/platformio.ini`. */
  platformioIni(deviceName: string): string;
  idedata(deviceName: string): string;
  firmwareBin(deviceName: string): string;
  /** The directory of a device's images (`firmware.bin`, `firmware.factory.bin`, …). */
  firmwareDir(deviceName: string): string;
}

/**
 * A build done for a remote offloader: isolated per (offloader, device), so two offloaders with a
 * `kitchen.yaml` never share (or flash) each other's objects, while one offloader's consecutive
 * builds of a device stay warm.
 */
export interface RemoteBuildOwner {
  /** The offloader's dashboard id. */
  dashboardId: string;
}

/** `<config_dir>/.esphome/.remote_builds/`: every remote build lives below it (and the TTL sweep walks it). */
export function remoteBuildsRoot(configDir: string): string {
  return join(configDir, '.esphome', '.remote_builds');
}

/**
 * Local builds use ESPHome's own default (the data dir is `.esphome` inside the config dir). A remote
 * build lives in `<config_dir>/.esphome/.remote_builds/<dashboard_id>/<device>/`: its sources in
 * `src/`, and that directory pinned as ESPHOME_DATA_DIR, so storage/, build/ and idedata/ land beside
 * them whatever data dir the receiver itself runs with.
 */
export function resolveBuildPaths(configDir: string, configuration: string, remote?: RemoteBuildOwner): BuildPaths {
  assertConfigurationName('configuration', configuration);
  let sourceDir = configDir;
  let dataDir = join(configDir, '.esphome');
  if (remote) {
    assertSafeId('dashboard_id', remote.dashboardId);
    dataDir = join(remoteBuildsRoot(configDir), remote.dashboardId, configuration.replace(/\.ya?ml$/, ''));
    sourceDir = join(dataDir, 'src');
  }
  const firmwareDir = (name: string): string => join(dataDir, 'build', name, '.pioenvs', name);
  return {
    yaml: join(sourceDir, configuration),
    sourceDir,
    dataDir,
    storage: join(dataDir, 'storage', `${configuration}.json`),
    buildRoot: join(dataDir, 'build'),
    platformioIni: (name) => join(dataDir, 'build', name, 'platformio.ini'),
    idedata: (name) => join(dataDir, 'idedata', `${name}.json`),
    firmwareBin: (name) => join(firmwareDir(name), 'firmware.bin'),
    firmwareDir,
  };
}

/** The device name the configuration's last build recorded in its StorageJSON; undefined when nothing was built (or the name is unusable as a path segment). */
export async function builtDeviceName(paths: BuildPaths): Promise<string | undefined> {
  let name: unknown;
  try {
    name = (JSON.parse(await readFile(paths.storage, 'utf8')) as { name?: unknown }).name;
  } catch {
    return undefined;
  }
  return isSafeId(name) ? name : undefined;
}

/** The images directory of the configuration's last build, named by the device name its StorageJSON records. */
export async function builtFirmwareDir(paths: BuildPaths): Promise<string | undefined> {
  const name = await builtDeviceName(paths);
  return name === undefined ? undefined : paths.firmwareDir(name);
}
