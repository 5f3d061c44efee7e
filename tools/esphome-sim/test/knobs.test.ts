import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SIM_BIN, type KnobsFile } from '../src/index.js';
import { cleanEnv, isAlive as alive, lines, runSim, workspace, type Workspace } from './helpers.js';

let ws: Workspace;
beforeEach(async () => {
  ws = await workspace();
});
afterEach(async () => {
  await ws.dispose();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}

/** Start the simulator without waiting for it, for knobs that never finish on their own. */
function startSim(args: string[], knobs: KnobsFile) {
  const child = spawn(SIM_BIN, args, {
    env: cleanEnv({ ESPHOME_SIM_KNOBS_JSON: JSON.stringify(knobs) }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.resume();
  const closed = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
  return { child, closed, output: () => stdout };
}

describe('knobs', () => {
  it('per-device knobs override the default', async () => {
    const slow = await ws.device('slow');
    const quick = await ws.device('quick');
    const broken = await ws.device('broken');
    const knobs: KnobsFile = {
      default: { compileMs: 1500, steps: 3 },
      devices: { quick: { compileMs: 20 }, broken: { failCompile: true } },
    };
    const [slowRun, quickRun, brokenRun] = await Promise.all([
      runSim(['compile', slow], { knobs }),
      runSim(['compile', quick], { knobs }),
      runSim(['compile', broken], { knobs }),
    ]);
    expect(slowRun.code).toBe(0);
    expect(quickRun.code).toBe(0);
    // Order of magnitude only: the slow device takes about a second longer than the quick one.
    expect(slowRun.ms).toBeGreaterThanOrEqual(1200);
    expect(quickRun.ms).toBeLessThan(slowRun.ms);
    expect(lines(slowRun.stdout).filter((l) => /^\[\d+\/3\]/.test(l))).toHaveLength(3);

    expect(brokenRun.code).toBe(1);
    expect(brokenRun.stdout).toContain('ERROR Error while compiling');
    expect(brokenRun.stdout).toContain('[FAILED]');
    expect(existsSync(join(ws.dir, '.esphome', 'build', 'broken', '.pioenvs', 'broken', 'firmware.bin'))).toBe(false);
    // StorageJSON is written before the build starts, as esphome does.
    expect(existsSync(join(ws.dir, '.esphome', 'storage', 'broken.yaml.json'))).toBe(true);
  });

  it('reads knobs from the file named by ESPHOME_SIM_KNOBS', async () => {
    const config = await ws.device('fromfile');
    const file = join(ws.dir, 'knobs.json');
    await writeFile(file, JSON.stringify({ devices: { fromfile: { firmwareBytes: 1000 } } }));
    const result = await runSim(['compile', config], { env: { ESPHOME_SIM_KNOBS: file } });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('(used 1000 bytes from');
  });

  it('failUpload fails the upload with ERROR lines and exit 1', async () => {
    const config = await ws.device('flaky');
    await runSim(['compile', config]);
    const serial = await runSim(['upload', '--device', '/dev/ttyACM0', config], { knobs: { default: { failUpload: true } } });
    expect(serial.code).toBe(1);
    expect(serial.stdout).toContain('A fatal error occurred');
    const ota = await runSim(['upload', '--device', '10.1.1.1', config], { knobs: { default: { failUpload: true } } });
    expect(ota.code).toBe(1);
    expect(ota.stdout).toMatch(/^ERROR Connecting to 10\.1\.1\.1 port 3232 failed/m);
  });

  it('noModule prints the CPython ModuleNotFoundError traceback and exits 1', async () => {
    const config = await ws.device('nopython');
    const result = await runSim(['compile', config], { knobs: { devices: { nopython: { noModule: true } } } });
    expect(result.code).toBe(1);
    expect(lines(result.stderr)).toEqual([
      'Traceback (most recent call last):',
      '  File "/usr/local/bin/esphome", line 5, in <module>',
      '    from esphome.__main__ import main',
      "ModuleNotFoundError: No module named 'esphome'",
    ]);
    expect(result.stdout).not.toContain('Compiling');
  });

  it('floods exactly floodLines lines of floodLineBytes bytes', async () => {
    const config = await ws.device('chatty');
    const result = await runSim(['compile', config], { knobs: { default: { floodLines: 20_000, floodLineBytes: 150 } } });
    expect(result.code).toBe(0);
    const flood = lines(result.stdout).filter((l) => l.includes('/lib/flood/'));
    expect(flood).toHaveLength(20_000);
    expect(flood.every((l) => Buffer.byteLength(l) === 150)).toBe(true);
  });

  it('rejects invalid knobs naming the environment variable (exit 2)', async () => {
    const config = await ws.device('typo');
    const inline = await runSim(['compile', config], { env: { ESPHOME_SIM_KNOBS_JSON: '{"default": {"compileMS": 5}}' } });
    expect(inline.code).toBe(2);
    expect(inline.stderr).toContain('ESPHOME_SIM_KNOBS_JSON');
    expect(inline.stderr).toContain('compileMS');

    const file = join(ws.dir, 'bad.json');
    await writeFile(file, '{ not json');
    const fromFile = await runSim(['compile', config], { env: { ESPHOME_SIM_KNOBS: file } });
    expect(fromFile.code).toBe(2);
    expect(fromFile.stderr).toContain('ESPHOME_SIM_KNOBS');
  });

  it('hang keeps the process running until it is killed', async () => {
    const config = await ws.device('stuck');
    const sim = startSim(['compile', config], { default: { hang: 'compile', compileMs: 50 } });
    await waitFor(() => sim.output().includes('[1/'));
    await sleep(400);
    expect(sim.child.exitCode).toBeNull();
    sim.child.kill('SIGTERM');
    const [code, signal] = await sim.closed;
    expect(code).toBeNull();
    expect(signal).toBe('SIGTERM');
  });

  it('ignoreSigterm survives SIGTERM and needs SIGKILL', async () => {
    const config = await ws.device('stubborn');
    const sim = startSim(['compile', config], { default: { hang: 'compile', ignoreSigterm: true } });
    await waitFor(() => sim.output().includes('Compiling app'));
    sim.child.kill('SIGTERM');
    await sleep(300);
    expect(sim.child.exitCode).toBeNull();
    expect(sim.child.signalCode).toBeNull();
    sim.child.kill('SIGKILL');
    const [, signal] = await sim.closed;
    expect(signal).toBe('SIGKILL');
  });

  it('spawnChild keeps a grandchild alive as long as the simulator and records its pid', async () => {
    const config = await ws.device('parent');
    const pidFile = join(ws.dir, '.esphome', 'sim-child.pid');
    const sim = startSim(['compile', config], { default: { spawnChild: true, compileMs: 600 } });
    await waitFor(() => existsSync(pidFile));
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    expect(pid).toBeGreaterThan(0);
    expect(alive(pid)).toBe(true);
    const [code] = await sim.closed;
    expect(code).toBe(0);
    await waitFor(() => !alive(pid));
  });
});
