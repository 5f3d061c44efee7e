import { readFile, stat } from 'node:fs/promises';
import { writeAtomic, writeIdeData, type DevicePaths } from './artifacts.js';
import type { DeviceConfig, Platform } from './config.js';

export const PIO_PLATFORMS: Record<Platform, string> = {
  esp32: 'platformio/espressif32',
  esp8266: 'platformio/espressif8266',
  rp2040: 'https://github.com/maxgerhardt/platform-raspberrypi.git',
  bk72xx: 'libretiny',
  ln882x: 'libretiny',
  rtl87xx: 'libretiny',
  host: 'platformio/native',
};

/** The platformio.ini esphome generates: its `[env:<name>]` section, keys sorted as esphome writes them. */
export function platformioIniText(device: DeviceConfig): string {
  return [
    '; Auto generated code by esphome (esphome-sim: simulated project, nothing is compiled)',
    '',
    '[common]',
    'lib_deps =',
    'build_flags =',
    'upload_flags =',
    '',
    '; ========== AUTO GENERATED CODE BEGIN ===========',
    `[env:${device.name}]`,
    `board = ${device.board}`,
    `framework = ${device.framework === 'esp-idf' ? 'espidf' : device.framework}`,
    `platform = ${PIO_PLATFORMS[device.platform]}`,
    '; =========== AUTO GENERATED CODE END ============',
    '',
  ].join('\n');
}

function mainCppText(device: DeviceConfig): string {
  return [
    '// Auto generated code by esphome (esphome-sim: simulated, nothing is compiled)',
    '#include "esphome.h"',
    'using namespace esphome;',
    '',
    `void setup() { App.pre_setup("${device.name}", "${device.friendlyName.replace(/["\\]/g, '')}"); App.setup(); }`,
    'void loop() { App.loop(); }',
    '',
  ].join('\n');
}

/**
 * The PlatformIO project esphome writes before building: `platformio.ini` (only when its content
 * changed, as esphome's write_file_if_changed does, so an unchanged project keeps its old mtime)
 * and `src/main.cpp`.
 */
export async function writeProject(device: DeviceConfig, paths: DevicePaths): Promise<void> {
  const ini = platformioIniText(device);
  const current = await readFile(paths.platformioIni, 'utf8').catch(() => undefined);
  if (current !== ini) await writeAtomic(paths.platformioIni, ini);
  await writeAtomic(paths.mainCpp, mainCppText(device));
}

const SIMULATED = "simulated: esphome-sim's model of esphome re-running `platformio run -t idedata`";

/**
 * esphome's platformio_api.get_idedata, as a serial upload calls it: the saved idedata is reused only
 * when `build/<name>/platformio.ini` exists and is strictly older than it; otherwise esphome runs
 * `platformio run -t idedata` in the build dir. Here that rerun succeeds (and rewrites the idedata)
 * when the build dir holds the project a compile leaves there (platformio.ini and src/main.cpp), and
 * fails as PlatformIO would when it does not — e.g. a build dir that only received images.
 * Returns the lines to print on failure, undefined when the idedata can be read.
 */
export async function ensureIdeData(paths: DevicePaths): Promise<string[] | undefined> {
  const mtimeOf = (path: string): Promise<number | undefined> => stat(path).then((s) => s.mtimeMs, () => undefined);
  const [iniMtime, ideDataMtime] = await Promise.all([mtimeOf(paths.platformioIni), mtimeOf(paths.idedata)]);
  if (iniMtime !== undefined && ideDataMtime !== undefined && iniMtime < ideDataMtime) return undefined;
  let pioError: string | undefined;
  if (iniMtime === undefined) {
    pioError = `Error: Not a PlatformIO project. \`platformio.ini\` file has not been found in current working directory (${paths.buildDir})`;
  } else if ((await mtimeOf(paths.mainCpp)) === undefined) {
    pioError = `Error: Nothing to build. Please put your source code files to the '${paths.buildDir}/src' folder`;
  }
  if (pioError !== undefined) return ['ERROR Could not match idedata, please report this error', `ERROR Stdout: ${pioError} (${SIMULATED})`];
  await writeIdeData(paths);
  return undefined;
}
