import { readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { isMap, parseDocument, type Document } from 'yaml';

/** Platform keys in the order esphome checks them; the first present one is the device's platform. */
export const PLATFORMS = ['esp32', 'esp8266', 'rp2040', 'bk72xx', 'ln882x', 'rtl87xx', 'host'] as const;
export type Platform = (typeof PLATFORMS)[number];

export interface DeviceConfig {
  /** Absolute path of the YAML file. */
  path: string;
  /** Raw YAML text: the seed of every deterministic artefact. */
  text: string;
  name: string;
  friendlyName: string;
  comment: string | null;
  platform: Platform;
  board: string;
  framework: string;
  /** Top-level keys, minus the preprocessing directives esphome strips before validation. */
  integrations: string[];
  webPort: number | null;
  address: string;
  config: Record<string, unknown>;
}

/** A YAML that esphome would refuse; main() prints it and exits 1. */
export class ConfigError extends Error {}

const DEFAULT_BOARDS: Record<Platform, string> = {
  esp32: 'esp32dev',
  esp8266: 'nodemcuv2',
  rp2040: 'rpipicow',
  bk72xx: 'generic-bk7231n-qfn32-tuya',
  ln882x: 'generic-ln882hki',
  rtl87xx: 'generic-rtl8710bn-2mb-788k',
  host: 'host',
};

/** Dashboard-style names only: the name becomes a path component under the data dir. */
const NAME_RE = /^[a-z0-9_-]+$/;

export async function readDevice(configPath: string): Promise<DeviceConfig> {
  const path = resolve(configPath);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(code === 'ENOENT' ? `Could not find configuration file ${path}` : `Cannot read ${path}: ${(err as Error).message}`);
  }
  const config = parseYaml(text);
  const subs = substitutions(config);
  const core = config['esphome'];
  if (!isObject(core)) throw new ConfigError("Invalid configuration: 'esphome' section is required");
  const name = expand(core['name'], subs);
  if (name === undefined || name === '') throw new ConfigError("Invalid configuration: 'esphome.name' is required");
  if (!NAME_RE.test(name)) {
    throw new ConfigError(`Invalid configuration: esphome.name '${name}' may only contain lowercase letters, digits, '-' and '_'`);
  }
  const platform = PLATFORMS.find((key) => key in config);
  if (platform === undefined) {
    throw new ConfigError(`Platform missing. You must include one of the available platform keys: ${PLATFORMS.join(', ')}`);
  }
  const platformSection = config[platform];
  const board = isObject(platformSection) && typeof platformSection['board'] === 'string' ? platformSection['board'] : DEFAULT_BOARDS[platform];
  const fw = isObject(platformSection) ? platformSection['framework'] : undefined;
  const framework = isObject(fw) && typeof fw['type'] === 'string' ? fw['type'] : 'arduino';
  const web = config['web_server'];
  const wifi = config['wifi'];
  return {
    path,
    text,
    name,
    friendlyName: expand(core['friendly_name'], subs) ?? name,
    comment: expand(core['comment'], subs) ?? null,
    platform,
    board,
    framework,
    integrations: Object.keys(config)
      .filter((key) => key !== 'substitutions' && key !== 'packages')
      .sort(),
    webPort: web === undefined ? null : isObject(web) && typeof web['port'] === 'number' ? web['port'] : 80,
    address: isObject(wifi) && typeof wifi['use_address'] === 'string' ? wifi['use_address'] : `${name}.local`,
    config,
  };
}

/** `$ESPHOME_DATA_DIR`, else `<config dir>/.esphome` — the same rule esphome uses. */
export function dataDirFor(device: DeviceConfig, env: NodeJS.ProcessEnv): string {
  const fromEnv = env['ESPHOME_DATA_DIR'];
  return fromEnv !== undefined && fromEnv !== '' ? resolve(fromEnv) : join(dirname(device.path), '.esphome');
}

export function storageFileName(device: DeviceConfig): string {
  return `${basename(device.path)}.json`;
}

function parseYaml(text: string): Record<string, unknown> {
  // Unknown tags (!secret, !lambda, !include...) only warn: their values stay strings, which is all we need.
  let doc: Document.Parsed;
  try {
    doc = parseDocument(text, { logLevel: 'silent', uniqueKeys: false });
  } catch (err) {
    throw new ConfigError(`Invalid YAML syntax: ${(err as Error).message}`);
  }
  const first = doc.errors[0];
  if (first !== undefined) throw new ConfigError(`Invalid YAML syntax:\n\n${first.message}`);
  if (!isMap(doc.contents)) throw new ConfigError('Invalid YAML: the configuration must be a mapping');
  const value: unknown = doc.toJS({ maxAliasCount: 1000 });
  return value as Record<string, unknown>;
}

function substitutions(config: Record<string, unknown>): Record<string, string> {
  const raw = config['substitutions'];
  const subs: Record<string, string> = {};
  if (!isObject(raw)) return subs;
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') subs[key] = String(value);
  }
  return subs;
}

/** `${var}` / `$var` substitution for the few fields the simulator reads. */
function expand(value: unknown, subs: Record<string, string>): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' && typeof value !== 'number') return undefined;
  return String(value).replace(/\$\{(\w+)\}|\$(\w+)/g, (match, braced: string | undefined, bare: string | undefined) => {
    const key = braced ?? bare ?? '';
    return subs[key] ?? match;
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
