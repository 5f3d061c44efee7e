import { readdir, readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { groupAlive, groupRecordOf, RunningGroups, Toolchain, type ToolchainProcess } from '../src/index.js';
import { isAlive, sandbox, SIM_BIN, type Sandbox } from './fixtures/sim.js';

let box: Sandbox;
const started: ToolchainProcess[] = [];
beforeEach(async () => {
  box = await sandbox();
});
afterEach(async () => {
  await Promise.all(started.splice(0).map((p) => p.terminate()));
  await box.dispose();
});

/** A compile that hangs silently with a grandchild in its group, as an orphaned build would. */
async function hangingCompile(knobs: Record<string, unknown> = {}): Promise<{ pid: number; childPid: number }> {
  const tc = new Toolchain({ command: [SIM_BIN], env: { ESPHOME_SIM_KNOBS_JSON: JSON.stringify({ default: { hang: 'compile', steps: 0, spawnChild: true, ...knobs } }) } });
  const proc = await tc.run({ kind: 'compile' }, box.config, { dataDir: box.dataDir });
  started.push(proc);
  const pidFile = join(box.dataDir, 'sim-child.pid');
  let childPid = 0;
  for (let i = 0; i < 500 && childPid === 0; i++) {
    childPid = Number(await readFile(pidFile, 'utf8').catch(() => '0')) || 0;
    if (childPid === 0) await new Promise((r) => setTimeout(r, 20));
  }
  if (!proc.pid || !childPid) throw new Error('the simulator did not start its grandchild');
  return { pid: proc.pid, childPid };
}

describe('running process groups', () => {
  it('a recorded group whose leader start time does not match is not killed', async () => {
    const { pid, childPid } = await hangingCompile();
    const real = await groupRecordOf(pid);
    expect(real).toEqual({ pgid: pid, startTime: expect.stringMatching(/^\d+$/) as string });
    const groups = new RunningGroups(join(box.dir, 'running'));
    await mkdir(groups.dir, { recursive: true });
    // Same pid, another start time: what a recycled pid looks like.
    await writeFile(join(groups.dir, 'job-1.json'), JSON.stringify({ pgid: pid, startTime: String(BigInt(real!.startTime) + 1n) }));
    expect(await groups.reap(100)).toEqual([{ id: 'job-1', record: { pgid: pid, startTime: String(BigInt(real!.startTime) + 1n) }, outcome: 'not_ours' }]);
    expect(isAlive(pid)).toBe(true);
    expect(isAlive(childPid)).toBe(true);
    expect(await readdir(groups.dir)).toEqual([]);
  });

  it('a recorded group that is still its own is killed, grandchildren included', async () => {
    const { pid, childPid } = await hangingCompile();
    const groups = new RunningGroups(join(box.dir, 'running'));
    expect(await groups.add('job-2', pid)).toBe(true);
    expect(await groups.reap(5_000)).toMatchObject([{ id: 'job-2', record: { pgid: pid }, outcome: 'killed' }]);
    expect(await groupAlive(pid)).toBe(false);
    expect(isAlive(childPid)).toBe(false);
    expect(await readdir(groups.dir)).toEqual([]);
  });

  it('a group that ignores SIGTERM is killed with SIGKILL after the grace', async () => {
    const { pid } = await hangingCompile({ ignoreSigterm: true });
    const groups = new RunningGroups(join(box.dir, 'running'));
    await groups.add('job-3', pid);
    expect((await groups.reap(200))[0]!.outcome).toBe('killed');
    expect(await groupAlive(pid)).toBe(false);
  });

  it('a removed record is not reaped; a record of a group that is gone, or a torn one, is dropped', async () => {
    const { pid } = await hangingCompile();
    const groups = new RunningGroups(join(box.dir, 'running'));
    await groups.add('kept-running', pid);
    await groups.remove('kept-running');
    await mkdir(groups.dir, { recursive: true });
    await writeFile(join(groups.dir, 'gone.json'), JSON.stringify({ pgid: 2 ** 22 + 7, startTime: '1' }));
    await writeFile(join(groups.dir, 'torn.json'), '{"pgid": 12');
    const reports = await groups.reap(100);
    expect(reports.map((r) => [r.id, r.outcome]).sort()).toEqual([
      ['gone', 'gone'],
      ['torn', 'error'],
    ]);
    expect(isAlive(pid)).toBe(true);
    expect(await readdir(groups.dir)).toEqual([]);
  });

  it('refuses a record id that is not a safe file name', async () => {
    const groups = new RunningGroups(join(box.dir, 'running'));
    await expect(groups.add('../escape', process.pid)).rejects.toMatchObject({ code: 'invalid_args' });
  });
});
