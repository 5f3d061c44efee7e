import { readFileSync } from 'node:fs';

/** Per-device behaviour of the simulator, so tests and benchmarks can script slow, failing or hostile toolchains. */
export interface Knobs {
  /** Total simulated compile time in ms (default 300). */
  compileMs?: number;
  /** Total simulated upload time in ms (default 200). */
  uploadMs?: number;
  /** Ninja-style build steps printed during compile (default 20). */
  steps?: number;
  failCompile?: boolean;
  failUpload?: boolean;
  /** Never finish the given phase (the process stays alive until killed). */
  hang?: 'compile' | 'upload';
  /** Keep running after SIGTERM, so callers must escalate to SIGKILL. */
  ignoreSigterm?: boolean;
  /** Spawn a grandchild `node` process and write its pid to `<data>/sim-child.pid`. */
  spawnChild?: boolean;
  /** Print this many filler lines during compile, as fast as stdout accepts them. */
  floodLines?: number;
  /** Size of each filler line in bytes, newline excluded (default 100). */
  floodLineBytes?: number;
  /** Behave like a Python without the esphome module installed. */
  noModule?: boolean;
  /** Size of firmware.bin in bytes (default 256 KiB). */
  firmwareBytes?: number;
}

export interface KnobsFile {
  default?: Knobs;
  devices?: Record<string, Knobs>;
}

export type ResolvedKnobs = Required<Omit<Knobs, 'hang'>> & Pick<Knobs, 'hang'>;

export const KNOBS_FILE_ENV = 'ESPHOME_SIM_KNOBS';
export const KNOBS_JSON_ENV = 'ESPHOME_SIM_KNOBS_JSON';

export const DEFAULT_KNOBS: ResolvedKnobs = {
  compileMs: 300,
  uploadMs: 200,
  steps: 20,
  failCompile: false,
  failUpload: false,
  ignoreSigterm: false,
  spawnChild: false,
  floodLines: 0,
  floodLineBytes: 100,
  noModule: false,
  firmwareBytes: 256 * 1024,
};

/** Raised for a knobs file the simulator cannot use; main() turns it into exit code 2. */
export class KnobsError extends Error {}

const NUMBER_KEYS = ['compileMs', 'uploadMs', 'steps', 'floodLines', 'floodLineBytes', 'firmwareBytes'] as const;
const BOOLEAN_KEYS = ['failCompile', 'failUpload', 'ignoreSigterm', 'spawnChild', 'noModule'] as const;

/**
 * Read knobs from the environment. Inline JSON wins over the file when both are set.
 * Unknown keys are rejected so a typo never silently runs the default behaviour.
 */
export function loadKnobs(env: NodeJS.ProcessEnv): KnobsFile {
  const inline = env[KNOBS_JSON_ENV];
  const file = env[KNOBS_FILE_ENV];
  let source: string;
  let text: string;
  if (inline !== undefined && inline !== '') {
    source = KNOBS_JSON_ENV;
    text = inline;
  } else if (file !== undefined && file !== '') {
    source = `${KNOBS_FILE_ENV} (${file})`;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new KnobsError(`esphome-sim: cannot read knobs file named by ${source}: ${(err as Error).message}`);
    }
  } else {
    return {};
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new KnobsError(`esphome-sim: invalid knobs JSON in ${source}: ${(err as Error).message}`);
  }
  try {
    return validateFile(raw);
  } catch (err) {
    throw new KnobsError(`esphome-sim: invalid knobs in ${source}: ${(err as Error).message}`);
  }
}

/** Default knobs overlaid by the device's own entry. */
export function knobsFor(file: KnobsFile, device?: string): ResolvedKnobs {
  const own = device === undefined ? undefined : file.devices?.[device];
  return { ...DEFAULT_KNOBS, ...file.default, ...own };
}

function validateFile(raw: unknown): KnobsFile {
  if (!isRecord(raw)) throw new Error('expected an object { "default": {...}, "devices": { "<name>": {...} } }');
  const result: KnobsFile = {};
  for (const [key, value] of Object.entries(raw)) {
    if (key === 'default') result.default = validateKnobs(value, 'default');
    else if (key === 'devices') {
      if (!isRecord(value)) throw new Error('"devices" must be an object keyed by device name');
      result.devices = {};
      for (const [name, knobs] of Object.entries(value)) result.devices[name] = validateKnobs(knobs, `devices.${name}`);
    } else throw new Error(`unknown top-level key "${key}" (expected "default" or "devices")`);
  }
  return result;
}

function validateKnobs(raw: unknown, where: string): Knobs {
  if (!isRecord(raw)) throw new Error(`${where} must be an object`);
  const knobs: Knobs = {};
  for (const [key, value] of Object.entries(raw)) {
    if ((NUMBER_KEYS as readonly string[]).includes(key)) {
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
        throw new Error(`${where}.${key} must be a non-negative number`);
      }
      knobs[key as (typeof NUMBER_KEYS)[number]] = value;
    } else if ((BOOLEAN_KEYS as readonly string[]).includes(key)) {
      if (typeof value !== 'boolean') throw new Error(`${where}.${key} must be a boolean`);
      knobs[key as (typeof BOOLEAN_KEYS)[number]] = value;
    } else if (key === 'hang') {
      if (value !== 'compile' && value !== 'upload') throw new Error(`${where}.hang must be "compile" or "upload"`);
      knobs.hang = value;
    } else {
      throw new Error(`unknown knob "${where}.${key}"`);
    }
  }
  return knobs;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
