import { devicePaths } from './artifacts.js';
import { spawnGrandchild } from './child.js';
import { clean } from './clean.js';
import { helpText, parseArgs, UsageError, type Invocation } from './cliargs.js';
import { compile } from './compile.js';
import { ConfigError, dataDirFor, readDevice } from './config.js';
import { knobsFor, KnobsError, loadKnobs, type KnobsFile, type ResolvedKnobs } from './knobs.js';
import { errLine, exitQuietlyOnBrokenPipe, line, startPhase } from './out.js';
import { showConfig } from './show-config.js';
import { rename } from './rename.js';
import { upload } from './upload.js';
import { BANNER, VERSION_LINE } from './version.js';

/** What a Python without the esphome package prints when its `esphome` console script starts. */
const NO_MODULE_TRACEBACK = [
  'Traceback (most recent call last):',
  '  File "/usr/local/bin/esphome", line 5, in <module>',
  '    from esphome.__main__ import main',
  "ModuleNotFoundError: No module named 'esphome'",
];

async function main(argv: readonly string[]): Promise<number> {
  exitQuietlyOnBrokenPipe();
  await line(BANNER);
  let invocation: Invocation;
  let knobFile: KnobsFile;
  try {
    invocation = parseArgs(argv);
    knobFile = loadKnobs(process.env);
  } catch (err) {
    if (err instanceof UsageError) {
      await errLine(err.usage);
      await errLine(err.message);
      return 2;
    }
    if (err instanceof KnobsError) {
      await errLine(err.message);
      return 2;
    }
    throw err;
  }
  if (invocation.command === 'help') {
    await line(helpText());
    return 0;
  }
  if (knobsFor(knobFile).noModule) return noModule();
  if (invocation.command === 'version') {
    await line(VERSION_LINE);
    return 0;
  }
  await line(`INFO Reading configuration ${invocation.config}...`);
  let device;
  try {
    device = await readDevice(invocation.config);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    await errLine(`ERROR Error while reading config: ${err.message}`);
    return 1;
  }
  const knobs = knobsFor(knobFile, device.name);
  if (knobs.noModule) return noModule();
  const paths = devicePaths(device, dataDirFor(device, process.env));
  prepareProcess(knobs);
  if (knobs.spawnChild) await spawnGrandchild(paths.childPid, knobs.ignoreSigterm);

  switch (invocation.command) {
    case 'compile':
      return compile(device, paths, knobs);
    case 'upload':
      return upload(device, paths, invocation.device ?? 'OTA', knobs);
    case 'clean':
      return clean(device, paths);
    case 'config':
      return showConfig(device);
    case 'rename':
      return rename(device, invocation.name, knobs);
    case 'run': {
      const compiled = await compile(device, paths, knobs);
      if (compiled !== 0) return compiled;
      startPhase();
      const uploaded = await upload(device, paths, invocation.device ?? 'OTA', knobs);
      if (uploaded === 0 && !invocation.noLogs) await line('INFO esphome-sim: device logs are not simulated; exiting (pass --no-logs to skip this note)');
      return uploaded;
    }
  }
}

function prepareProcess(knobs: ResolvedKnobs): void {
  if (!knobs.ignoreSigterm) return;
  // A toolchain that shrugs off SIGTERM: only SIGKILL ends it, so callers must escalate.
  process.on('SIGTERM', () => {
    void line('WARNING esphome-sim: ignoring SIGTERM (knob ignoreSigterm)');
  });
}

async function noModule(): Promise<number> {
  for (const text of NO_MODULE_TRACEBACK) await errLine(text);
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    // exitCode rather than exit(): pending pipe writes still drain before the process ends.
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`esphome-sim: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
