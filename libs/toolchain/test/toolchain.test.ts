import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError } from '@kiln/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseProgress, Toolchain, type ToolchainProcess } from '../src/index.js';
import { FIXTURE_DEVICE, isAlive, sandbox, SIM_BIN, waitFor, type Sandbox } from './fixtures/sim.js';

type Knobs = Record<string, unknown>;

let box: Sandbox;
const started: ToolchainProcess[] = [];
beforeEach(async () => {
  box = await sandbox();
});
afterEach(async () => {
  // Never leave a simulator behind, whatever a test did.
  await Promise.all(started.splice(0).map((p) => p.terminate()));
  await box.dispose();
});

function toolchain(knobs: Knobs = {}, killGraceMs?: number): Toolchain {
  return new Toolchain({
    command: [SIM_BIN],
    killGraceMs,
    env: { ESPHOME_SIM_KNOBS_JSON: JSON.stringify({ default: knobs }) },
  });
}

async function start(tc: Toolchain, action: Parameters<Toolchain['run']>[0] = { kind: 'compile' }): Promise<ToolchainProcess> {
  const proc = await tc.run(action, box.config, { dataDir: box.dataDir });
  started.push(proc);
  return proc;
}

async function collect(proc: ToolchainProcess): Promise<string[]> {
  const out: string[] = [];
  for await (const line of proc.lines) out.push(line);
  return out;
}

async function childPid(dataDir: string): Promise<number> {
  const file = join(dataDir, 'sim-child.pid');
  await waitFor(() => existsSync(file));
  return Number((await readFile(file, 'utf8')).trim());
}

describe('Toolchain (against the esphome simulator)', () => {
  it('streams compile output line by line, in order, and exits 0', async () => {
    const proc = await start(toolchain({ compileMs: 800, steps: 8 }));
    expect(proc.pid).toBeGreaterThan(0);
    let exitedEarly: boolean | undefined;
    let settled = false;
    void proc.exited.then(() => (settled = true));
    const lines: string[] = [];
    for await (const line of proc.lines) {
      // Streaming, not buffered to the end: the first line arrives while the build still runs.
      if (exitedEarly === undefined) exitedEarly = settled;
      lines.push(line);
    }
    expect(exitedEarly).toBe(false);
    expect(await proc.exited).toEqual({ exitCode: 0, signal: null });

    expect(lines[0]).toBe('INFO esphome-sim: simulated toolchain (no real build)');
    const order = [
      `INFO Reading configuration ${box.config}...`,
      'INFO Generating C++ source...',
      'INFO Compiling app...',
      `[1/8] Compiling .pioenvs/${FIXTURE_DEVICE}/src/main.cpp.o`,
      `[8/8] Linking .pioenvs/${FIXTURE_DEVICE}/firmware.elf`,
      'INFO Successfully compiled program.',
    ];
    const positions = order.map((l) => lines.indexOf(l));
    expect(positions.every((p) => p > 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(lines.at(-1)).toBe('INFO Successfully compiled program.');

    const progress = lines.map((l) => parseProgress(l, 'compile')).filter((p): p is number => p !== undefined);
    expect(progress.at(-1)).toBe(100);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);
  });

  it('reports a failing compile through the exit code, never a rejection', async () => {
    const proc = await start(toolchain({ failCompile: true, steps: 5 }));
    const lines = await collect(proc);
    expect(await proc.exited).toEqual({ exitCode: 1, signal: null });
    expect(lines.some((l) => l.startsWith('ERROR Error while compiling'))).toBe(true);
  });

  it('sets ESPHOME_DATA_DIR to the job data dir', async () => {
    const proc = await start(toolchain({ compileMs: 20 }));
    await collect(proc);
    expect((await proc.exited).exitCode).toBe(0);
    expect(existsSync(join(box.dataDir, 'storage', 'device.yaml.json'))).toBe(true);
    expect(existsSync(join(box.dataDir, 'build', FIXTURE_DEVICE, '.pioenvs', FIXTURE_DEVICE, 'firmware.bin'))).toBe(true);
    expect(existsSync(join(box.dir, '.esphome'))).toBe(false);
  });

  it('splits carriage-return OTA progress into one line per redraw', async () => {
    const tc = toolchain({ compileMs: 20, uploadMs: 100 });
    await collect(await start(tc));
    const proc = await start(tc, { kind: 'upload', port: '192.168.1.40' });
    const lines = await collect(proc);
    expect((await proc.exited).exitCode).toBe(0);
    const bars = lines.filter((l) => l.startsWith('Uploading: ['));
    expect(bars).toHaveLength(20);
    const progress = bars.map((l) => parseProgress(l, 'upload'));
    expect(progress[0]).toBe(5);
    expect(progress.at(-1)).toBe(100);
    expect(lines.at(-1)).toBe('INFO Successfully uploaded program.');
  });

  it('fails an upload without a compile with exit code 1', async () => {
    const proc = await start(toolchain(), { kind: 'upload', port: '/dev/ttyUSB0' });
    const lines = await collect(proc);
    expect((await proc.exited).exitCode).toBe(1);
    expect(lines.some((l) => l.startsWith('ERROR Firmware not found at '))).toBe(true);
  });

  it('terminate() kills the whole process tree, grandchildren included', async () => {
    const proc = await start(toolchain({ hang: 'compile', spawnChild: true }));
    const reading = collect(proc);
    const grandchild = await childPid(box.dataDir);
    expect(isAlive(grandchild)).toBe(true);

    await proc.terminate();
    expect(isAlive(grandchild)).toBe(false);
    expect(await proc.exited).toEqual({ exitCode: null, signal: 'SIGTERM' });
    await reading; // lines end once the tree is gone
    await proc.terminate(); // idempotent
  });

  it('escalates to SIGKILL after the grace when the toolchain ignores SIGTERM', async () => {
    const proc = await start(toolchain({ hang: 'compile', ignoreSigterm: true, spawnChild: true }, 300));
    const reading = collect(proc);
    const grandchild = await childPid(box.dataDir);
    const before = Date.now();
    await Promise.all([proc.terminate(), proc.terminate()]);
    const took = Date.now() - before;
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(5000);
    expect((await proc.exited).signal).toBe('SIGKILL');
    expect(isAlive(grandchild)).toBe(false);
    const lines = await reading;
    expect(lines).toContain('WARNING esphome-sim: ignoring SIGTERM (knob ignoreSigterm)');
  });

  it('reports a missing executable as an actionable failed_precondition', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const tc = new Toolchain({ command: ['esphome-not-installed-kiln-test'] });
      const proc = await tc.run({ kind: 'compile' }, box.config, { dataDir: box.dataDir });
      expect(await collect(proc)).toEqual([]);
      const exit = await proc.exited;
      expect(exit.exitCode).toBeNull();
      expect(exit.signal).toBeNull();
      expect(exit.error).toBeInstanceOf(KilnError);
      expect(exit.error?.code).toBe('failed_precondition');
      expect(exit.error?.message).toBe(
        "esphome toolchain not found: 'esphome-not-installed-kiln-test' is not on PATH — install ESPHome (pip install esphome) or set firmware.toolchain",
      );
      expect(exit.error?.details).toEqual({ command: 'esphome-not-installed-kiln-test' });
      await proc.terminate();
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('names a missing absolute path and a missing working directory precisely', async () => {
    const missing = join(box.dir, 'no-such-esphome');
    const byPath = await new Toolchain({ command: [missing] }).run({ kind: 'config' }, box.config, { dataDir: box.dataDir });
    const pathExit = await byPath.exited;
    expect(pathExit.error?.code).toBe('failed_precondition');
    expect(pathExit.error?.message).toBe(
      `esphome toolchain not found: '${missing}' does not exist — install ESPHome (pip install esphome) or set firmware.toolchain`,
    );

    const badCwd = join(box.dir, 'gone');
    const byCwd = await toolchain().run({ kind: 'config' }, box.config, { dataDir: box.dataDir, cwd: badCwd });
    const cwdExit = await byCwd.exited;
    expect(cwdExit.error?.code).toBe('failed_precondition');
    expect(cwdExit.error?.message).toContain(badCwd);
  });

  it('streams a 200k-line flood to a slow consumer with bounded memory', async () => {
    const floodLines = 200_000;
    const proc = await start(toolchain({ floodLines, floodLineBytes: 500, steps: 2, compileMs: 10 }));
    const baseline = process.memoryUsage().heapUsed;
    let settled = false;
    void proc.exited.then(() => (settled = true));
    // Nobody reads for a second: unbuffered, the simulator would be done with its ~100 MB by now;
    // with backpressure it is stuck on a full pipe and nothing piled up in our heap.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(settled).toBe(false);
    expect(process.memoryUsage().heapUsed - baseline).toBeLessThan(16 * 1024 * 1024);
    let peak = 0;
    let flood = 0;
    let wrongSize = 0;
    let total = 0;
    for await (const line of proc.lines) {
      total++;
      if (line.includes('/lib/flood/')) {
        flood++;
        if (line.length !== 500) wrongSize++;
      }
      // Slow consumer: stall now and then; the simulator must block on its pipe meanwhile.
      if (total % 20_000 === 0) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        peak = Math.max(peak, process.memoryUsage().heapUsed - baseline);
      }
    }
    expect(flood).toBe(floodLines);
    expect(wrongSize).toBe(0);
    expect(await proc.exited).toEqual({ exitCode: 0, signal: null });
    // ~100 MB went through; holding it would show up as hundreds of MB of heap.
    expect(peak).toBeLessThan(48 * 1024 * 1024);
  });

  it('a consumer that stops reading early does not block the child', async () => {
    const proc = await start(toolchain({ floodLines: 50_000, floodLineBytes: 200 }));
    let seen = 0;
    for await (const _line of proc.lines) {
      if (++seen === 5) break;
    }
    expect(await proc.exited).toEqual({ exitCode: 0, signal: null });
  });

  it('rejects a port that could be read as an option', async () => {
    await expect(toolchain().run({ kind: 'upload', port: '--help' }, box.config, { dataDir: box.dataDir })).rejects.toThrow(KilnError);
  });
});
