import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { assertConfigurationName, assertSafeId, isSafeId } from './names.js';

/**
 * The build tree ESPHome keeps beside the YAML files of the config dir (`<config_dir>/.esphome/`):
 * StorageJSON, build dirs, idedata, and the receiver's remote builds. The ONE resolver of those paths
 * for every reader and writer (devices, firmware, receiver, toolchain); `resolveConfigurationFile`
 * (config-file.ts) is its sibling for the YAML itself.
 */

/** `<config_dir>/.esphome`: ESPHome's default data dir, where local builds keep their state. */
export function localDataDir(configDir: string): string {
  return join(configDir, '.esphome');
}

/** `<config_dir>/.esphome/build`: every local build dir (what reset_build_env wipes). */
export function localBuildRoot(configDir: string): string {
  return join(localDataDir(configDir), 'build');
}

/** `<config_dir>/.esphome/storage`: one StorageJSON per configuration (`<file>.yaml.json`). */
export function storageDir(configDir: string): string {
  return join(localDataDir(configDir), 'storage');
}

/**
 * A local build's StorageJSON (`<config_dir>/.esphome/storage/<file>.yaml.json`) for a configuration
 * name the caller read from the config dir (the device scan lists every device file, whatever its
 * name); a name from outside goes through `resolveBuildPaths`, which checks it.
 */
export function storageJsonPath(configDir: string, configuration: string): string {
  return storageFileIn(localDataDir(configDir), configuration);
}

function storageFileIn(dataDir: string, configuration: string): string {
  return join(dataDir, 'storage', `${configuration}.json`);
}

/** `x.yaml.json` in the storage dir belongs to configuration `x.yaml`. */
export function configurationOfStorageFile(file: string): string | undefined {
  return file.endsWith('.json') ? file.slice(0, -'.json'.length) : undefined;
}

/** The configuration's file name without `.yaml`/`.yml` (a remote build's dir, a device's fallback name). */
export function configurationStem(configuration: string): string {
  return configuration.replace(/\.ya?ml$/, '');
}

/**
 * Where one configuration's build lives. The toolchain gets `dataDir` as ESPHOME_DATA_DIR, and
 * storage/build/idedata/firmware paths are derived from it.
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
  /** esphome's PlatformIO project of a device: `<buildRoot>/<name>/` (named after `esphome.name`). */
  buildDir(deviceName: string): string;
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
  return join(localDataDir(configDir), '.remote_builds');
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
  let dataDir = localDataDir(configDir);
  if (remote) {
    assertSafeId('dashboard_id', remote.dashboardId);
    dataDir = join(remoteBuildsRoot(configDir), remote.dashboardId, configurationStem(configuration));
    sourceDir = join(dataDir, 'src');
  }
  const buildDir = (name: string): string => join(dataDir, 'build', name);
  const firmwareDir = (name: string): string => join(buildDir(name), '.pioenvs', name);
  return {
    yaml: join(sourceDir, configuration),
    sourceDir,
    dataDir,
    storage: storageFileIn(dataDir, configuration),
    buildRoot: join(dataDir, 'build'),
    buildDir,
    platformioIni: (name) => join(buildDir(name), 'platformio.ini'),
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

/**
 * Remove what builds of a configuration left: its StorageJSON and, when `deviceName` (its
 * `esphome.name`) is a plain name, that device's build dir. Only a plain name may reach a recursive
 * rm. The firmware service calls this once no job of the configuration runs (`forget_build`).
 */
export async function removeBuildOutputs(paths: BuildPaths, deviceName: string): Promise<void> {
  await rm(paths.storage, { force: true });
  if (isSafeId(deviceName)) await rm(paths.buildDir(deviceName), { recursive: true, force: true });
}
