import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deferred, KilnError, systemClock } from '@kiln/core';
import { SIM_BIN } from '@kiln/esphome-sim';
import { createRootLogger } from '@kiln/logging';
import { RunningGroups, Toolchain } from '@kiln/toolchain';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_OFFLOADER_SETTINGS, LocalExecutor, OffloadExecutor, type EligibleReceiver, type ExecutorExit, type ExecutorProcess, type OffloaderSettings } from '../src/index.js';
import { JobType } from '../src/jobs/job.js';
import { ScriptedPoolBase } from './scripted-pool.js';

/**
 * The scheduler against a scripted receiver pool (the gRPC transport is covered end to end in
 * apps/kiln/test/offloader.test.ts) and a real local executor running the simulator.
 */
class ScriptedPool extends ScriptedPoolBase {
  receivers: EligibleReceiver[];
  constructor(ids: string[]) {
    super();
    this.receivers = ids.map((id) => ({ id, label: `${id} (127.0.0.1:1)`, reportedIdle: true, reportedAtMs: 0 }));
  }
  eligible(): EligibleReceiver[] {
    return this.receivers;
  }
  byPin(): undefined {
    return undefined;
  }
}

let dir: string;
let settings: OffloaderSettings;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-offload-'));
  for (const d of ['a', 'b', 'c', 'd']) await writeFile(join(dir, `${d}.yaml`), `esphome:\n  name: ${d}\nesp32:\n  board: esp32dev\n`);
  settings = { ...DEFAULT_OFFLOADER_SETTINGS };
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function executor(pool: ScriptedPool | undefined, maxRemoteRetries = 2): Promise<OffloadExecutor> {
  const base = new LocalExecutor(new Toolchain({ command: [SIM_BIN] }), dir, 1, new RunningGroups(join(dir, 'running')));
  const logger = await createRootLogger({ level: 'silent', pretty: false });
  const ex = new OffloadExecutor({ base, settings: () => settings, maxRemoteRetries, logger, clock: systemClock });
  if (pool) ex.attachPool(pool);
  return ex;
}

interface Started {
  proc: ExecutorProcess;
  /** Read from the start, as the lanes do (a remote run waits for its reader: backpressure). */
  done: Promise<{ lines: string[]; exit: ExecutorExit }>;
}

async function compile(ex: OffloadExecutor, device: string): Promise<Started> {
  const proc = await ex.run({ jobId: `job-${device}`, configuration: `${device}.yaml`, type: JobType.JOB_TYPE_COMPILE, port: '', newName: '' });
  return { proc, done: drain(proc) };
}

async function until(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
}

async function drain(proc: ExecutorProcess): Promise<{ lines: string[]; exit: ExecutorExit }> {
  const lines: string[] = [];
  for await (const line of proc.lines) lines.push(line);
  return { lines, exit: await proc.exited };
}

const lost = (): ExecutorExit => ({ exitCode: null, signal: null, lost: true, error: new KilnError('unavailable', 'connection reset', {}) });

describe('offloader scheduler', () => {
  it('capacity: one slot per eligible receiver, plus the local slot only when local is in the pool or nothing is eligible', async () => {
    const pool = new ScriptedPool(['r1', 'r2']);
    const ex = await executor(pool);
    expect(ex.capacity).toBe(2);
    settings.include_local_in_pool = true;
    expect(ex.capacity).toBe(3);
    settings.remote_builds_enabled = false;
    expect(ex.capacity).toBe(1);
    settings.remote_builds_enabled = true;
    pool.receivers = [];
    expect(ex.capacity).toBe(1);
    expect((await executor(undefined)).capacity).toBe(1);
  });

  it('idle receivers first, one compile each, in parallel; then the receiver whose compile of ours is oldest', async () => {
    const pool = new ScriptedPool(['r1', 'r2']);
    const ex = await executor(pool);
    const runs = [await compile(ex, 'a'), await compile(ex, 'b'), await compile(ex, 'c')];
    await until(() => pool.calls.length === 3);
    expect(pool.calls.map((c) => [c.jobId, c.receiverId])).toEqual([
      ['job-a', 'r1'],
      ['job-b', 'r2'],
      ['job-c', 'r1'],
    ]);
    for (const c of pool.calls) c.exit.resolve({ exitCode: 0, signal: null });
    for (const run of runs) {
      const { lines, exit } = await run.done;
      expect(exit.exitCode).toBe(0);
      expect(lines[0]).toMatch(/^\.\.\. \[compiling on receiver r[12] /);
    }
  });

  it('right after a start, a compile waits for the receivers\' first connection attempts instead of going to this host', async () => {
    const pool = new ScriptedPool([]);
    pool.settling = deferred<void>();
    const ex = await executor(pool);
    let placed = false;
    const started = compile(ex, 'a').then((run) => ((placed = true), run));
    await new Promise((r) => setTimeout(r, 50));
    // Nobody is eligible yet, but a receiver is still being reached: nothing runs, not even locally.
    expect(placed).toBe(false);
    pool.receivers = [{ id: 'r1', label: 'r1 (127.0.0.1:1)', reportedIdle: true, reportedAtMs: 0 }];
    pool.settling.resolve();
    const run = await started;
    await until(() => pool.calls.length === 1);
    expect(pool.calls[0]!.receiverId).toBe('r1');
    pool.calls[0]!.exit.resolve({ exitCode: 0, signal: null });
    expect((await run.done).lines[0]).toMatch(/^\.\.\. \[compiling on receiver r1 /);
  });

  it('once the first attempts are over and nobody answered, the compile runs on this host', async () => {
    const pool = new ScriptedPool([]);
    pool.settling = deferred<void>();
    const ex = await executor(pool);
    const started = compile(ex, 'a');
    pool.settling.resolve();
    const { lines, exit } = await (await started).done;
    expect(exit.exitCode).toBe(0);
    expect(lines.some((l) => l.includes('Successfully compiled program'))).toBe(true);
    expect(pool.calls).toEqual([]);
  });

  it('with this host in the pool, it takes a compile once every receiver is busy (before queueing on a busy receiver)', async () => {
    settings.include_local_in_pool = true;
    const pool = new ScriptedPool(['r1']);
    const ex = await executor(pool);
    const remote = await compile(ex, 'a');
    const local = await compile(ex, 'b');
    const { lines, exit } = await local.done;
    expect(lines[0]).toBe('... [compiling on this host]');
    expect(lines.some((l) => l.includes('Successfully compiled program'))).toBe(true);
    expect(exit.exitCode).toBe(0);
    expect(pool.calls.map((c) => c.jobId)).toEqual(['job-a']);
    pool.calls[0]!.exit.resolve({ exitCode: 0, signal: null });
    expect((await remote.done).exit.exitCode).toBe(0);
  });

  it('a receiver lost mid-build: retried on another, at most maxRemoteRetries times, then built on this host', async () => {
    const pool = new ScriptedPool(['r1', 'r2', 'r3']);
    const ex = await executor(pool, 1);
    const run = await compile(ex, 'a');
    await until(() => pool.calls.length === 1);
    pool.calls[0]!.exit.resolve(lost());
    await until(() => pool.calls.length === 2);
    expect(pool.calls[1]!.receiverId).not.toBe('r1');
    pool.calls[1]!.exit.resolve(lost());
    const { lines, exit } = await run.done;
    expect(pool.calls).toHaveLength(2);
    expect(lines.filter((l) => l.includes('lost the build'))).toHaveLength(2);
    expect(lines.join('\n')).toMatch(/retrying elsewhere \(1\/1\)[\s\S]*compiling on this host/);
    expect(lines.some((l) => l.includes('Successfully compiled program'))).toBe(true);
    expect(exit).toMatchObject({ exitCode: 0 });
    expect(exit.lost).toBeUndefined();
  });

  it('cancel reaches the receiver (its signal aborts) and nothing is retried', async () => {
    const pool = new ScriptedPool(['r1', 'r2']);
    const ex = await executor(pool);
    const run = await compile(ex, 'a');
    await until(() => pool.calls.length === 1);
    await run.proc.terminate();
    expect(pool.calls[0]!.signal.aborted).toBe(true);
    expect((await run.done).exit).toMatchObject({ exitCode: null, signal: 'SIGTERM' });
    expect(pool.calls).toHaveLength(1);
  });

  it('clean and other non-compile jobs, and everything while remote builds are off, run on this host', async () => {
    const pool = new ScriptedPool(['r1']);
    const ex = await executor(pool);
    const clean = await ex.run({ jobId: 'clean', configuration: 'a.yaml', type: JobType.JOB_TYPE_CLEAN, port: '', newName: '' });
    expect((await drain(clean)).exit.exitCode).toBe(0);
    settings.remote_builds_enabled = false;
    expect((await (await compile(ex, 'b')).done).exit.exitCode).toBe(0);
    expect(pool.calls).toHaveLength(0);
  });
});
