import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach } from 'vitest';

export const KILN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

/** Loopback ports picked by the OS, so parallel runs never collide. */
export const EPHEMERAL = ['--set', 'supervisor.healthListen=127.0.0.1:0', '--set', 'logstore.grpcListen=127.0.0.1:0', '--set', 'gateway.listen=127.0.0.1:0'];

export interface Running {
  child: ChildProcess;
  dataDir: string;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  healthUrl(): Promise<string>;
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function tempDataDir(): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-cli-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export function startKiln(args: string[], dataDir: string, env: NodeJS.ProcessEnv = {}): Running {
  const child = spawn(process.execPath, [KILN, ...args, '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HOME: dataDir, KILN_LOG_LEVEL: 'info', ...env },
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const host = args[0] === 'serve' ? `serve-${args[1]}` : args[0] === 'receiver' ? 'receiver' : 'supervise';
  return {
    child,
    dataDir,
    output: () => out,
    exited,
    async healthUrl() {
      for (let i = 0; i < 400; i++) {
        if (child.exitCode !== null) throw new Error(`kiln exited ${child.exitCode}: ${out}`);
        try {
          const run = JSON.parse(await readFile(join(dataDir, 'run', `${host}.json`), 'utf8')) as { healthUrl?: string };
          if (run.healthUrl && (await fetch(`${run.healthUrl}/ready`)).status === 200) return run.healthUrl;
        } catch {
          // not up yet
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`kiln never became ready: ${out}`);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Run a short kiln command to completion. */
export function runKiln(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [KILN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** JSON log records a host printed (pino lines), for asserting on what it said. */
export function records(output: string): Array<Record<string, unknown>> {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export interface KilnTestHost {
  /** This test's fresh data dir. */
  readonly dataDir: string;
  /** Start kiln on it; stopped when the test ends. */
  start(args: string[], env?: NodeJS.ProcessEnv): Running;
}

/** Per test: a fresh data dir, and every kiln started on it stopped (then `after`, then the dir removed). */
export function kilnPerTest(after?: (dataDir: string) => void): KilnTestHost {
  let dir = '';
  let cleanup: () => Promise<void> = async () => undefined;
  const running: Running[] = [];
  beforeEach(async () => ({ dir, cleanup } = await tempDataDir()));
  afterEach(async () => {
    for (const r of running.splice(0)) await r.stop();
    after?.(dir);
    await cleanup();
  });
  return {
    get dataDir() {
      return dir;
    },
    start(args, env) {
      const r = startKiln(args, dir, env);
      running.push(r);
      return r;
    },
  };
}

/**
 * A simulator left stuck by a host that exits hard outlives it (tests about that want exactly this);
 * reap it afterwards by a marker in its command line (the test's temp dir): its group, then itself.
 */
export function killStrays(marker: string): void {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker)) process.kill(-Number(pid), 'SIGKILL');
    } catch {
      // gone, or not a group leader
    }
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker)) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone
    }
  }
}
