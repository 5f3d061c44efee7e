#!/usr/bin/env node
import { KilnError, toKilnError } from '@kiln/core';
import { parseHostArgs } from './args.js';
import { catalog } from './commands/catalog.js';
import { control } from './commands/control.js';
import { status } from './commands/status.js';
import { runHost } from './host.js';
import { defaultServiceNames, serviceDefinitions, serviceNames, workerDefinitions } from './registry.js';

const USAGE = `kiln — firmware build service for ESPHome fleets

usage:
  kiln supervise [--services a,b] [--nats URL] [--data-dir D] [--config-dir C] [--config FILE] [--password P] [--set key=value]...
      host services in one process (default: all; in-process bus unless --nats)
  kiln serve <service> --nats URL [...same flags]
      run one service alone over NATS
  kiln worker compile --nats URL [--config-dir C] [--set worker.id=NAME] [...same flags]
      run compiles for a firmware service with firmware.compileExecutor=workers (same config dir)
  kiln status [--data-dir D | --url http://host:port] [--json]
      ask running hosts for their health (exit 0 when every service is ready)
  kiln control <service> <stop|start|restart> [--data-dir D | --url ...]
      stop, start or restart one service in a running host
  kiln catalog import --from <upstream definitions dir | monolithic file/dir> [--from ...] [--to DIR] [--data-dir D]
      import the upstream catalog into <data-dir>/catalog (atomic; the previous catalog stays until it is complete)
  kiln receiver [--nats URL] [...same flags as supervise]
      run a remote build receiver (gRPC with pinned TLS on receiver.grpcListen)
  kiln receiver <identity|open [seconds]|close|approve <peer>|remove <peer>|rotate> --nats URL [--json]
      operate a running receiver: its pin and peers, the pairing window, approvals, identity rotation
  kiln pair <host:port> [--pairing-key-file F] [--yes] [--wait seconds]
      pair this machine (offloader) with a receiver: shows the receiver's pin, asks, requests, waits for approval

services: ${serviceDefinitions.map((d) => `${d.name} (${d.description})`).join(', ')}
settings: flags > KILN_* environment > config file (--config, KILN_CONFIG_FILE, ~/.config/kiln/kiln.json) > defaults`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  switch (command) {
    case 'supervise':
      return runHost({ host: 'supervise', args: parseHostArgs(rest), defaultServices: defaultServiceNames, requireNats: false });
    case 'receiver': {
      const args = parseHostArgs(rest);
      // Remote-build commands load gRPC and the identity code: only when used.
      if (args.positionals.length > 0) return (await import('./commands/receiver.js')).receiverControl(args, out);
      return runHost({ host: 'receiver', args: { ...args, services: ['receiver'] }, defaultServices: ['receiver'], requireNats: false });
    }
    case 'pair':
      return (await import('./commands/pair.js')).pair(parseHostArgs(rest), out);
    case 'serve': {
      const args = parseHostArgs(rest);
      const [service, ...extra] = args.positionals;
      if (!service || extra.length > 0 || args.services) {
        throw new KilnError('invalid_args', `usage: kiln serve <service> --nats URL (services: ${serviceNames.join(', ')}), got ${JSON.stringify(args.positionals)}`, { field: 'service', value: service ?? null });
      }
      return runHost({ host: `serve-${service}`, args: { ...args, services: [service] }, defaultServices: [service], requireNats: true });
    }
    case 'worker': {
      const args = parseHostArgs(rest);
      const [kind, ...extra] = args.positionals;
      if (kind !== 'compile' || extra.length > 0 || args.services) {
        throw new KilnError('invalid_args', `usage: kiln worker compile --nats URL (the only worker kind is "compile"), got ${JSON.stringify(args.positionals)}`, { field: 'worker', value: kind ?? null });
      }
      // Several workers may share a data dir: each has its own run file.
      return runHost({ host: `worker-compile-${process.pid}`, args, definitions: workerDefinitions, defaultServices: ['worker'], requireNats: true, command: 'worker compile' });
    }
    case 'status':
      return status(parseHostArgs(rest), out);
    case 'control':
      return control(parseHostArgs(rest), out);
    case 'catalog':
      return catalog(rest, out);
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
