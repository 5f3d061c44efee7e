import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { KilnError } from '@kiln/core';
import * as v from 'valibot';
import { layerFromEnv } from './env.js';
import type { Output, Schema } from './settings.js';
import { describeSource, isTree, layerFromTree, mergeLayers, originOf, setPath, emptyLayer, type Layer, type Tree } from './layers.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

const coreSchema = v.looseObject({
  /** Kiln's own state: job metadata, job logs, identities. */
  dataDir: v.pipe(v.string(), v.minLength(1, 'must not be empty')),
  /** Device YAML files (ESPHome's config dir). */
  configDir: v.pipe(v.string(), v.minLength(1, 'must not be empty')),
  /** NATS URL; absent means the in-process bus. */
  nats: v.optional(v.pipe(v.string(), v.regex(/^(nats|tls|ws|wss):\/\/[^\s]+$|^[^\s:/]+:\d+$/, 'must be a NATS URL like nats://127.0.0.1:4222'))),
  /** Namespace on a shared NATS server: every subject is sent as `<natsPrefix>.<subject>`. */
  natsPrefix: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'must be dot-separated letters, digits, "_" or "-"'))),
  logLevel: v.optional(v.picklist(LOG_LEVELS, `must be one of ${LOG_LEVELS.join(', ')}`), 'info'),
});

export type CoreSettings = v.InferOutput<typeof coreSchema>;

export interface LoadConfigOptions {
  /** Flag values by setting path (`dataDir`, `logstore.grpcListen`, …) with the flag's name for errors. */
  flags?: ReadonlyArray<{ path: string; value: unknown; flag: string }>;
  env?: NodeJS.ProcessEnv;
  /** Explicit config file; otherwise KILN_CONFIG_FILE, otherwise `~/.config/kiln/kiln.json` when it exists. */
  configFile?: string;
  cwd?: string;
}

/**
 * Settings in precedence order flags > environment > file > defaults. Core settings are
 * validated at load; each service validates its own section with its own schema (`section`).
 */
export class KilnConfig {
  readonly core: CoreSettings;

  constructor(private readonly merged: Layer, private readonly cwd: string) {
    this.core = parseWithOrigins(coreSchema, merged.values, merged, '');
    this.core.dataDir = resolve(cwd, this.core.dataDir);
    this.core.configDir = resolve(cwd, this.core.configDir);
  }

  /** A service's settings, validated by its schema; errors name the setting, value and source. */
  section<S extends Schema>(name: string, schema: S): Output<S> {
    const raw = this.merged.values[name];
    if (raw !== undefined && !isTree(raw)) {
      throw configError(name, raw, originOf(this.merged, name), 'must be an object of settings');
    }
    return parseWithOrigins(schema, raw ?? {}, this.merged, name);
  }

  /** Top-level keys that are neither core settings nor one of `known` sections: almost always typos. */
  unknownKeys(known: readonly string[]): string[] {
    const core = Object.keys(coreSchema.entries);
    return Object.keys(this.merged.values).filter((k) => !core.includes(k) && !known.includes(k));
  }

  /** Resolve a path setting against the working directory the config was loaded in. */
  resolvePath(path: string): string {
    return isAbsolute(path) ? path : resolve(this.cwd, path);
  }
}

export async function loadConfig(options: LoadConfigOptions = {}): Promise<KilnConfig> {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const home = env.HOME ?? homedir();
  const dataHome = env.XDG_DATA_HOME ?? join(home, '.local/share');
  const defaults = emptyLayer();
  const dataDir = join(dataHome, 'kiln');
  defaults.values = { dataDir, configDir: join(dataDir, 'config') };

  const fileLayer = await readConfigFile(options.configFile ?? env.KILN_CONFIG_FILE, join(env.XDG_CONFIG_HOME ?? join(home, '.config'), 'kiln/kiln.json'), cwd);
  const envLayer = layerFromEnv(env);
  const flagLayer = emptyLayer();
  for (const { path, value, flag } of options.flags ?? []) setPath(flagLayer, path, value, { kind: 'flag', name: flag });

  const merged = mergeLayers([defaults, fileLayer, envLayer, flagLayer]);
  // configDir follows dataDir unless set on its own.
  if (!merged.origins.has('configDir') && merged.origins.has('dataDir')) {
    merged.values.configDir = join(String(merged.values.dataDir), 'config');
  }
  return new KilnConfig(merged, cwd);
}

async function readConfigFile(explicit: string | undefined, fallback: string, cwd: string): Promise<Layer> {
  const path = explicit ? resolve(cwd, explicit) : fallback;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !explicit) return emptyLayer();
    throw new KilnError('invalid_args', `cannot read config file ${path}: ${(err as Error).message}`, { field: 'configFile', value: path });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new KilnError('invalid_args', `config file ${path} is not valid JSON: ${(err as Error).message}`, { field: 'configFile', value: path });
  }
  if (!isTree(parsed)) {
    throw new KilnError('invalid_args', `config file ${path} must hold a JSON object`, { field: 'configFile', value: path });
  }
  return layerFromTree(parsed, { kind: 'file', path });
}

function parseWithOrigins<S extends Schema>(schema: S, raw: unknown, layer: Layer, prefix: string): Output<S> {
  const result = v.safeParse(schema, raw);
  if (result.success) return result.output as Output<S>;
  const issue = result.issues[0];
  const keys = (issue.path ?? []).map((item) => String(item.key));
  const path = [...(prefix ? [prefix] : []), ...keys].join('.');
  const reason = issue.type === 'strict_object' ? 'is not a known setting' : issue.message;
  throw configError(path, valueAt(raw, keys), originOf(layer, path), reason);
}

function valueAt(root: unknown, path: string[]): unknown {
  let node = root;
  for (const key of path) node = isTree(node) ? (node as Tree)[key] : undefined;
  return node;
}

/** Secrets are never echoed back in an error (they end up in logs and terminals). */
const SECRET_SETTING = /password|secret|token|psk/i;

function configError(path: string, value: unknown, source: ReturnType<typeof originOf>, reason: string): KilnError {
  const shown = SECRET_SETTING.test(path) ? '<redacted>' : value;
  return new KilnError('invalid_args', `setting ${path} = ${JSON.stringify(shown)} (from ${describeSource(source)}): ${reason}`, {
    field: path,
    value: shown,
    source: describeSource(source),
  });
}
