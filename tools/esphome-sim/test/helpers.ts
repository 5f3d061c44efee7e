import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SIM_BIN, type KnobsFile } from '../src/index.js';

export interface SimResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
  knobs?: KnobsFile;
}

/** Environment without any simulator/esphome settings leaking in from the developer's shell. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('ESPHOME_')) env[key] = value;
  }
  return { ...env, ...extra };
}

/** Run the real bin/esphome as a child process and collect everything it prints. */
export function runSim(args: readonly string[], options: RunOptions = {}): Promise<SimResult> {
  const env = cleanEnv(options.env);
  if (options.knobs !== undefined) env['ESPHOME_SIM_KNOBS_JSON'] = JSON.stringify(options.knobs);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(SIM_BIN, args, { cwd: options.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: Date.now() - started }));
  });
}

export function lines(text: string): string[] {
  return text.split('\n').filter((l, i, all) => i < all.length - 1 || l !== '');
}

export function deviceYaml(name: string, extra = ''): string {
  return [
    'esphome:',
    `  name: ${name}`,
    `  friendly_name: ${name.replace(/-/g, ' ')} friendly`,
    'esp32:',
    '  board: esp32dev',
    'wifi:',
    '  ssid: !secret wifi_ssid',
    'logger:',
    'api:',
    'ota:',
    '  - platform: esphome',
    extra,
  ].join('\n');
}

export interface Workspace {
  dir: string;
  /** Write `<dir>/<file>` with a device YAML and return its path. */
  device(name: string, file?: string, extra?: string): Promise<string>;
  dispose(): Promise<void>;
}

export async function workspace(): Promise<Workspace> {
  const dir = await mkdtemp(join(tmpdir(), 'esphome-sim-test-'));
  return {
    dir,
    async device(name, file = `${name}.yaml`, extra = '') {
      const path = join(dir, file);
      await writeFile(path, deviceYaml(name, extra));
      return path;
    },
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}

/**
 * kill(pid, 0) plus a zombie check: an orphan that died but is not reaped yet (init may reap
 * lazily in containers) still answers kill(0), yet it is gone for every practical purpose.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  if (process.platform !== 'linux') return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}
