import { fileURLToPath } from 'node:url';

export type { Knobs, KnobsFile, ResolvedKnobs } from './knobs.js';
export { DEFAULT_KNOBS, KNOBS_FILE_ENV, KNOBS_JSON_ENV } from './knobs.js';
export { BANNER, ESPHOME_VERSION, VERSION_LINE } from './version.js';

/**
 * Absolute path of the simulator's `esphome` executable (bin/esphome → dist/main.js), for tests and
 * benchmarks to pass as the toolchain command. Resolves the same from src/ and dist/.
 */
export const SIM_BIN: string = fileURLToPath(new URL('../bin/esphome', import.meta.url));
