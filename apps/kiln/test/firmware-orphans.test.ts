import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SIM_BIN } from '@kiln/esphome-sim';
import { GatewayClient, type Frame } from '@kiln/gateway';
import { groupAlive, processAlive } from '@kiln/toolchain';
import { resolveBuildPaths } from '@kiln/core';
import { describe, expect, it } from 'vitest';
import { EPHEMERAL, killStrays, kilnPerTest, runKiln, type Running } from './cli-harness.js';

const host = kilnPerTest(killStrays);

const result = <T = Record<string, unknown>>(f: Frame): T => {
  if ('error_code' in f) throw new Error(`unexpected error frame ${JSON.stringify(f)}`);
  return f.result as T;
};

async function until<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  for (let i = 0; i < 400; i++) {
    const v = await fn();
    if (ok(v)) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what}: never happened`);
}

/** Process groups of live toolchain runs on this YAML (leaders: a run is its own group). */
function compileGroups(yaml: string): number[] {
  const groups: number[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (Number(fields[2]) === Number(pid) && !'ZX'.includes(fields[0]!) && cmdline.includes('compile') && cmdline.includes(yaml)) groups.push(Number(pid));
    } catch {
      // exited while we looked
    }
  }
  return groups;
}

/** The pgid of a running process, from /proc. */
function pgidOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

describe('kiln supervise killed hard during a compile', () => {
  it('reaps the orphaned compile at the next start, re-runs the job, and only one compile of the config runs', async () => {
    const configDir = join(host.dataDir, 'devices');
    await mkdir(configDir, { recursive: true });
    await writeFile(join(configDir, 'porch.yaml'), 'esphome:\n  name: porch\nesp32:\n  board: esp32dev\n');
    const yaml = resolveBuildPaths(configDir, 'porch.yaml').yaml;
    // 4 steps: the simulator prints "[1/4] …" and then hangs silently, so losing its reader (Kiln)
    // cannot end it through a broken pipe: it stays orphaned until something kills it.
    const knobs = { ESPHOME_SIM_KNOBS_JSON: JSON.stringify({ default: { hang: 'compile', spawnChild: true, steps: 4 } }) };
    const supervise = async (): Promise<{ kiln: Running; client: GatewayClient }> => {
      const kiln = host.start(['supervise', ...EPHEMERAL, '--config-dir', configDir, '--set', `firmware.toolchain=${SIM_BIN}`, '--set', 'firmware.killGraceMs=2000'], knobs);
      await kiln.healthUrl();
      const status = JSON.parse((await runKiln(['status', '--data-dir', host.dataDir, '--json'])).stdout) as Array<{ services: Array<{ name: string; health: { detail: Record<string, string> } }> }>;
      const url = status[0]!.services.find((s) => s.name === 'gateway')!.health.detail.url!;
      return { kiln, client: await GatewayClient.connect(`${url.replace('http', 'ws')}/ws`) };
    };
    const output = (client: GatewayClient, jobId: string) => async () => result<{ lines: string[] }>(await client.call('firmware/get_job_output', { job_id: jobId })).lines;

    const first = await supervise();
    const job = result<{ id: string }>(await first.client.call('firmware/compile', { configuration: 'porch.yaml' }));
    await until('first compile output', output(first.client, job.id), (lines) => lines.some((l) => l.startsWith('[1/4]')));
    const childPidFile = join(resolveBuildPaths(configDir, 'porch.yaml').dataDir, 'sim-child.pid');
    const childPid = await until('grandchild pid', async () => Number(await readFile(childPidFile, 'utf8').catch(() => '')) || 0, (pid) => pid > 0);
    const orphanGroup = pgidOf(childPid);
    expect(compileGroups(yaml)).toEqual([orphanGroup]);
    first.client.close();

    first.kiln.child.kill('SIGKILL');
    await first.kiln.exited;
    // Kiln is gone, its compile is not.
    expect(processAlive(orphanGroup)).toBe(true);
    expect(processAlive(childPid)).toBe(true);

    const second = await supervise();
    // Reaped before the firmware service ran anything: the whole group, grandchild included.
    expect(await groupAlive(orphanGroup)).toBe(false);
    expect(processAlive(childPid)).toBe(false);
    // The restore semantics: the interrupted job runs again, saying so in its log.
    const rerun = await until('re-run output', output(second.client, job.id), (lines) => lines.some((l) => l.startsWith('[1/4]')));
    expect(rerun).toContain('... [kiln restarted while this job was running; its leftover process was stopped; running it again]');
    expect(result(await second.client.call('firmware/get_job', { job_id: job.id }))).toMatchObject({ status: 'running' });
    const rerunGroups = compileGroups(yaml);
    expect(rerunGroups).toHaveLength(1);
    expect(rerunGroups[0]).not.toBe(orphanGroup);

    // A compile started again replaces the re-run: still one compile of porch.yaml at a time.
    const again = result<{ id: string }>(await second.client.call('firmware/compile', { configuration: 'porch.yaml' }));
    await until('second compile output', output(second.client, again.id), (lines) => lines.some((l) => l.startsWith('[1/4]')));
    expect(result(await second.client.call('firmware/get_job', { job_id: job.id }))).toMatchObject({ status: 'cancelled' });
    expect(compileGroups(yaml)).toHaveLength(1);
    second.client.close();
  });
});
