import { parseArgs } from 'node:util';
import { KilnError } from '@kiln/core';

/** Flags every host command shares, mapped to the config paths they set. */
export const HOST_FLAGS = {
  'data-dir': { type: 'string', path: 'dataDir' },
  'config-dir': { type: 'string', path: 'configDir' },
  nats: { type: 'string', path: 'nats' },
  'log-level': { type: 'string', path: 'logLevel' },
  // Prefer KILN_GATEWAY__PASSWORD or the config file: a flag is visible in the process list.
  password: { type: 'string', path: 'gateway.password' },
} as const;

export interface ParsedHostArgs {
  flags: Array<{ path: string; value: unknown; flag: string }>;
  positionals: string[];
  configFile: string | undefined;
  services: string[] | undefined;
  json: boolean;
  url: string | undefined;
  /** `kiln pair`: the receiver's one-shot key file, skip the confirmation, seconds to wait for approval. */
  pairingKeyFile: string | undefined;
  yes: boolean;
  wait: string | undefined;
}

/** Parse flags strictly: an unknown flag or a malformed --set is an error naming it. */
export function parseHostArgs(argv: string[]): ParsedHostArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        'data-dir': { type: 'string' },
        'config-dir': { type: 'string' },
        nats: { type: 'string' },
        'log-level': { type: 'string' },
        password: { type: 'string' },
        config: { type: 'string' },
        services: { type: 'string' },
        set: { type: 'string', multiple: true },
        json: { type: 'boolean' },
        url: { type: 'string' },
        'pairing-key-file': { type: 'string' },
        yes: { type: 'boolean' },
        wait: { type: 'string' },
      },
    });
  } catch (err) {
    throw new KilnError('invalid_args', (err as Error).message, { argv });
  }
  const { values, positionals } = parsed;
  const flags: ParsedHostArgs['flags'] = [];
  for (const [flag, { path }] of Object.entries(HOST_FLAGS)) {
    const value = values[flag as keyof typeof values];
    if (typeof value === 'string') flags.push({ path, value, flag: `--${flag}` });
  }
  for (const assignment of values.set ?? []) {
    const eq = assignment.indexOf('=');
    if (eq <= 0) throw new KilnError('invalid_args', `--set takes key=value (e.g. logstore.grpcListen=127.0.0.1:0), got ${JSON.stringify(assignment)}`, { field: '--set', value: assignment });
    flags.push({ path: assignment.slice(0, eq), value: assignment.slice(eq + 1), flag: `--set ${assignment.slice(0, eq)}` });
  }
  const services = values.services
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (values.services !== undefined && services?.length === 0) {
    throw new KilnError('invalid_args', `--services needs at least one service name, got ${JSON.stringify(values.services)}`, { field: '--services', value: values.services });
  }
  return {
    flags,
    positionals,
    configFile: values.config,
    services,
    json: values.json ?? false,
    url: values.url,
    pairingKeyFile: values['pairing-key-file'],
    yes: values.yes ?? false,
    wait: values.wait,
  };
}
