#!/usr/bin/env node
import { KilnError, toKilnError } from '@kiln/core';
import { parseHostArgs } from './args.js';
import { control } from './commands/control.js';
import { status } from './commands/status.js';
import { runHost } from './host.js';
import { serviceDefinitions, serviceNames } from './registry.js';

const USAGE = `kiln — firmware build service for ESPHome fleets

usage:
  kiln supervise [--services a,b] [--nats URL] [--data-dir D] [--config-dir C] [--config FILE] [--password P] [--set key=value]...
      host services in one process (default: all; in-process bus unless --nats)
  kiln serve <service> --nats URL [...same flags]
      run one service alone over NATS
  kiln status [--data-dir D | --url http://host:port] [--json]
      ask running hosts for their health (exit 0 when every service is ready)
  kiln control <service> <stop|start|restart> [--data-dir D | --url ...]
      stop, start or restart one service in a running host

services: ${serviceDefinitions.map((d) => `${d.name} (${d.description})`).join(', ')}
settings: flags > KILN_* environment > config file (--config, KILN_CONFIG_FILE, ~/.config/kiln/kiln.json) > defaults`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  switch (command) {
    case 'supervise':
      return runHost({ host: 'supervise', args: parseHostArgs(rest), defaultServices: serviceNames, requireNats: false });
    case 'serve': {
      const args = parseHostArgs(rest);
      const [service, ...extra] = args.positionals;
      if (!service || extra.length > 0 || args.services) {
        throw new KilnError('invalid_args', `usage: kiln serve <service> --nats URL (services: ${serviceNames.join(', ')}), got ${JSON.stringify(args.positionals)}`, { field: 'service', value: service ?? null });
      }
      return runHost({ host: `serve-${service}`, args: { ...args, services: [service] }, defaultServices: [service], requireNats: true });
    }
    case 'status':
      return status(parseHostArgs(rest), out);
    case 'control':
      return control(parseHostArgs(rest), out);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      out(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`kiln: unknown command ${JSON.stringify(command)}\n\n${USAGE}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const error = toKilnError(err);
    process.stderr.write(`kiln: ${error.message}\n`);
    process.exit(error.code === 'invalid_args' ? 2 : 1);
  },
);
