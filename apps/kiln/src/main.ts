#!/usr/bin/env node
import { KilnError, toKilnError } from '@kiln/core';
import { parseHostArgs } from './args.js';
import { catalog } from './commands/catalog.js';
import { control } from './commands/control.js';
import { status } from './commands/status.js';
import { runHost } from './host.js';
import { defaultServiceNames, serviceDefinitions, serviceNames, workerDefinitions } from './registry.js';

/** Each command's usage lines: `kiln --help` prints them all, `kiln <command> --help` its own. */
const COMMAND_USAGE: Record<string, string> = {
  supervise: `  kiln supervise [--services a,b] [--nats URL] [--data-dir D] [--config-dir C] [--config FILE] [--password P] [--set key=value]...
      host services in one process (default: all; in-process bus unless --nats)`,
  serve: `  kiln serve <service> --nats URL [...same flags]
      run one service alone over NATS`,
  worker: `  kiln worker compile --nats URL [--config-dir C] [--set worker.id=NAME] [...same flags]
      run compiles for a firmware service with firmware.compileExecutor=workers (same config dir)`,
  status: `  kiln status [--data-dir D | --url http://host:port] [--json]
      ask running hosts for their health (exit 0 when every service is ready)`,
  control: `  kiln control <service> <stop|start|restart> [--data-dir D | --url ...]
      stop, start or restart one service in a running host`,
  catalog: `  kiln catalog import --from <upstream definitions dir | monolithic file/dir | upstream .tar.gz> [--from ...] [--to DIR] [--data-dir D]
      import the upstream catalog into <data-dir>/catalog (atomic; the previous catalog stays until it is complete)`,
  receiver: `  kiln receiver [--nats URL] [...same flags as supervise]
      run a remote build receiver (gRPC with pinned TLS on receiver.grpcListen)
  kiln receiver <identity|open [seconds]|close|approve <peer>|remove <peer>|rotate> --nats URL [--json]
      operate a running receiver: its pin and peers, the pairing window, approvals, identity rotation`,
  pair: `  kiln pair <host:port> [--pairing-key-file F] [--yes] [--wait seconds]
      pair this machine (offloader) with a receiver: shows the receiver's pin, asks, requests, waits for approval`,
};

const FOOTER = `services: ${serviceDefinitions.map((d) => `${d.name} (${d.description})`).join(', ')}
settings: flags > KILN_* environment > config file (--config, KILN_CONFIG_FILE, ~/.config/kiln/kiln.json) > defaults`;

const USAGE = `kiln — firmware build service for ESPHome fleets

usage:
${Object.values(COMMAND_USAGE).join('\n')}

${FOOTER}`;

/** `--help` or `-h` among a command's arguments (before a `--`) asks for that command's usage. */
function asksForHelp(args: string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  const own = command === undefined ? undefined : COMMAND_USAGE[command];
  if (own !== undefined && asksForHelp(rest)) {
    out(`usage:\n${own}\n\n${FOOTER}`);
    return 0;
  }
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
    case 'help': {
      const topic = command === 'help' && rest[0] !== undefined ? COMMAND_USAGE[rest[0]] : undefined;
      out(topic === undefined ? USAGE : `usage:\n${topic}\n\n${FOOTER}`);
      return command === undefined ? 2 : 0;
    }
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
