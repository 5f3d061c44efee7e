import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SIM_BIN } from '@kiln/esphome-sim';

/** The shipped entry point (compiled JS), as a service manager would start it. */
export const KILN_BIN = fileURLToPath(new URL('../../kiln/bin/kiln', import.meta.url));

export type SimKnobs = Record<string, unknown>;

export interface KilnHost {
  readonly url: string;
  readonly configDir: string;
  output(): string;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
  /** Start again on the same data dir, config dir and port (a restart as systemd would do it). */
  restart(): Promise<void>;
}

/** A port the OS just gave out: `kiln supervise` restarts on the same one, so the page can reconnect. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** `kiln supervise` with the esphome simulator on a fresh data dir, devices written as YAML files. */
export interface KilnOptions {
  devices: string[];
  knobs: { default?: SimKnobs; devices?: Record<string, SimKnobs> };
  password?: string;
  /** `--services` (default: what supervise hosts by default). */
  services?: string[];
  /** Extra `--set key=value` settings. */
  settings?: Record<string, string>;
}

export async function startKiln(options: KilnOptions): Promise<KilnHost> {
  const dataDir = await mkdtemp(join(tmpdir(), 'kiln-web-'));
  const configDir = join(dataDir, 'devices');
  await mkdir(configDir, { recursive: true });
  for (const name of options.devices) await writeFile(join(configDir, `${name}.yaml`), `esphome:\n  name: ${name}\nesp32:\n  board: esp32dev\n`);
  const port = await freePort();
  let child: ChildProcess | undefined;
  let out = '';
  const launch = async (): Promise<void> => {
    const args = ['supervise', '--data-dir', dataDir, '--config-dir', configDir, '--set', 'supervisor.healthListen=127.0.0.1:0', '--set', `gateway.listen=127.0.0.1:${port}`, '--set', `firmware.toolchain=${SIM_BIN}`];
    for (const [key, value] of Object.entries(options.settings ?? {})) args.push('--set', `${key}=${value}`);
    if (options.services) args.push('--services', options.services.join(','));
    const proc = spawn(KILN_BIN, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        HOME: dataDir,
        KILN_LOG_LEVEL: 'info',
        ESPHOME_SIM_KNOBS_JSON: JSON.stringify(options.knobs),
        ...(options.password ? { KILN_GATEWAY__PASSWORD: options.password } : {}),
      },
    });
    child = proc;
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    for (let i = 0; i < 400; i++) {
      if (proc.exitCode !== null) throw new Error(`kiln exited ${proc.exitCode}: ${out}`);
      try {
        const run = JSON.parse(await readFile(join(dataDir, 'run', 'supervise.json'), 'utf8')) as { pid?: number; healthUrl?: string };
        if (run.pid === proc.pid && run.healthUrl && (await fetch(`${run.healthUrl}/ready`)).status === 200) return;
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`kiln never became ready: ${out}`);
  };
  const stop = async (): Promise<void> => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    await exited;
  };
  await launch();
  return {
    url: `http://127.0.0.1:${port}/`,
    configDir,
    output: () => out,
    stop,
    async restart() {
      await stop();
      await launch();
    },
    async [Symbol.asyncDispose]() {
      await stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  } as KilnHost & AsyncDisposable;
}
