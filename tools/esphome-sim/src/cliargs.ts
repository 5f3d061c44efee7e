/** The parsed command line, mirroring esphome's argparse layout (`esphome [global] <command> [opts] <yaml>`). */
export type Invocation =
  | { command: 'version' }
  | { command: 'help' }
  | { command: 'compile' | 'clean' | 'config'; config: string }
  | { command: 'upload'; config: string; device: string | undefined }
  | { command: 'run'; config: string; device: string | undefined; noLogs: boolean }
  | { command: 'rename'; config: string; name: string };

/** argparse-style failure: usage + message on stderr, exit code 2. */
export class UsageError extends Error {
  constructor(
    readonly usage: string,
    message: string,
  ) {
    super(message);
  }
}

export const COMMANDS = ['config', 'compile', 'upload', 'clean', 'run', 'rename', 'version'] as const;
const MAIN_USAGE = 'usage: esphome [-h] [-v] [-q] [--version] command ...';
const GLOBAL_FLAGS = new Set(['-v', '--verbose', '-q', '--quiet']);

export function parseArgs(argv: readonly string[]): Invocation {
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--version') return { command: 'version' };
    if (arg === '-h' || arg === '--help') return { command: 'help' };
    if (!GLOBAL_FLAGS.has(arg)) break;
  }
  const command = argv[i];
  if (command === undefined) throw new UsageError(MAIN_USAGE, 'esphome: error: the following arguments are required: command');
  if (command.startsWith('-')) throw new UsageError(MAIN_USAGE, `esphome: error: unrecognized arguments: ${command}`);
  if (!(COMMANDS as readonly string[]).includes(command)) {
    const choices = COMMANDS.map((c) => `'${c}'`).join(', ');
    throw new UsageError(MAIN_USAGE, `esphome: error: argument command: invalid choice: '${command}' (choose from ${choices})`);
  }
  if (command === 'version') return { command: 'version' };
  return parseSubcommand(command as Exclude<(typeof COMMANDS)[number], 'version'>, argv.slice(i + 1));
}

function parseSubcommand(command: 'config' | 'compile' | 'upload' | 'clean' | 'run' | 'rename', rest: readonly string[]): Invocation {
  if (command === 'rename') return parseRename(rest);
  const takesDevice = command === 'upload' || command === 'run';
  const usage = `usage: esphome ${command} [-h]${takesDevice ? ' [--device DEVICE]' : ''}${command === 'run' ? ' [--no-logs]' : ''} configuration [configuration ...]`;
  const fail = (message: string): never => {
    throw new UsageError(usage, `esphome ${command}: error: ${message}`);
  };
  const positional: string[] = [];
  let device: string | undefined;
  let noLogs = false;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] ?? '';
    if (takesDevice && arg === '--device') {
      const value = rest[++i];
      if (value === undefined || value.startsWith('-')) fail('argument --device: expected one argument');
      device = value;
    } else if (takesDevice && arg.startsWith('--device=')) {
      device = arg.slice('--device='.length);
    } else if (command === 'run' && arg === '--no-logs') {
      noLogs = true;
    } else if (arg.startsWith('-') && arg !== '-') {
      fail(`unrecognized arguments: ${arg}`);
    } else {
      positional.push(arg);
    }
  }
  const [config, ...extra] = positional;
  if (config === undefined) return fail('the following arguments are required: configuration');
  // esphome accepts several configurations; the simulator models the single-device case Kiln uses.
  if (extra.length > 0) fail(`esphome-sim handles one configuration per invocation (got ${positional.length})`);
  if (command === 'upload') return { command, config, device };
  if (command === 'run') return { command, config, device, noLogs };
  return { command, config };
}

/** `esphome rename <configuration> <name>`, as esphome takes it. */
function parseRename(rest: readonly string[]): Invocation {
  const usage = 'usage: esphome rename [-h] configuration name';
  const positional = rest.filter((a) => !a.startsWith('-') || a === '-');
  const flag = rest.find((a) => a.startsWith('-') && a !== '-');
  if (flag !== undefined) throw new UsageError(usage, `esphome rename: error: unrecognized arguments: ${flag}`);
  const [config, name, ...extra] = positional;
  if (config === undefined || name === undefined) throw new UsageError(usage, 'esphome rename: error: the following arguments are required: configuration, name');
  if (extra.length > 0) throw new UsageError(usage, `esphome rename: error: unrecognized arguments: ${extra.join(' ')}`);
  return { command: 'rename', config, name };
}

export function helpText(): string {
  return [
    MAIN_USAGE,
    '',
    'ESPHome simulator (esphome-sim): same CLI and on-disk contract as esphome, no real build.',
    '',
    'commands:',
    '  config       Validate the configuration and print it.',
    '  compile      Read the configuration and compile a program.',
    '  upload       Upload the compiled program (--device PORT|IP|OTA).',
    '  clean        Delete the build files of the configuration.',
    '  run          compile then upload (--device, --no-logs).',
    '  rename       Rename the device: new YAML, compile, OTA upload, old YAML removed.',
    '  version      Print the version.',
  ].join('\n');
}
