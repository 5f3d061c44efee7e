import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { firmwareSubjects } from '@kiln/contracts';
import { describe, expect, it } from 'vitest';
import { editSavedJobs, harnessPerTest, S, writeDevices } from './harness.js';

const start = harnessPerTest();

describe('restart restores the lanes', () => {
  it('a running compile re-runs with a notice in its log and its held upload stays held until it completes', async () => {
    const h = await start({ knobs: { devices: { 'dev-a': { compileMs: 1_500 } } } });
    const { compile, upload } = await h.core.install({ configuration: 'dev-a.yaml', port: 'OTA' });
    await h.waitFor(compile!.id, S.JOB_STATUS_RUNNING);
    await h.restart();
    const restored = (await h.core.getJob({ jobId: upload!.id })).job!;
    expect(restored).toMatchObject({ status: S.JOB_STATUS_QUEUED, held: true });
    await h.waitFor(upload!.id, S.JOB_STATUS_COMPLETED);
    const log = await h.logs.read(compile!.id);
    expect(log.lines).toContain('... [kiln restarted while this job was running; running it again]');
    expect(h.toolchain.started.map((s) => s.action)).toEqual(['compile', 'compile', 'upload']);
  });

  it('the process group of a running job is recorded before started is announced, and forgotten when the job ends', async () => {
    const h = await start();
    const running = join(h.dataDir, 'firmware', 'running');
    const seenAtStarted: string[][] = [];
    h.bus.subscribe(firmwareSubjects.event('started'), () => void seenAtStarted.push(existsSync(running) ? readdirSync(running) : []));
    const { compile, upload } = await h.core.install({ configuration: 'dev-a.yaml', port: 'OTA' });
    await h.waitFor(upload!.id, S.JOB_STATUS_COMPLETED);
    expect(seenAtStarted).toEqual([[`${compile!.id}.json`], [`${upload!.id}.json`]]);
    expect(readdirSync(running)).toEqual([]);
  });

  it('a dependent whose prerequisite is missing is cancelled on restore, and that is logged', async () => {
    const h = await start();
    const done = (await h.core.compile({ configuration: 'dev-b.yaml' })).job!;
    await h.waitFor(done.id, S.JOB_STATUS_COMPLETED);
    await h.core.stop();
    await editSavedJobs(h, (jobs) => jobs.push({ ...jobs[0], id: 'orphan-upload', type: 2, lane: 2, status: 1, held: true, dependsOn: 'vanished-compile', configuration: 'dev-a.yaml', port: 'OTA', finishedAtMs: 0 }));
    const core = await h.restart();
    expect((await core.getJob({ jobId: 'orphan-upload' })).job!).toMatchObject({ status: S.JOB_STATUS_CANCELLED, error: 'prerequisite job did not complete successfully' });
    expect(h.toolchain.started.filter((s) => s.action === 'upload')).toEqual([]);
  });

  it('a persisted legacy install job still loads and runs as esphome run', async () => {
    const h = await start();
    const done = (await h.core.compile({ configuration: 'dev-b.yaml' })).job!;
    await h.waitFor(done.id, S.JOB_STATUS_COMPLETED);
    await h.core.stop();
    await editSavedJobs(h, (jobs) => jobs.push({ ...jobs[0], id: 'legacy-install', type: 6, lane: 1, status: 1, configuration: 'dev-a.yaml', port: 'OTA', startedAtMs: 0, finishedAtMs: 0, progress: 0 }));
    await h.restart();
    const finished = await h.waitFor('legacy-install', S.JOB_STATUS_COMPLETED);
    expect(finished.exitCode).toBe(0);
    expect(h.toolchain.started.at(-1)).toEqual({ action: 'run', configuration: 'dev-a.yaml' });
    expect((await h.logs.read('legacy-install')).lines.some((l) => l.includes('Successfully uploaded program'))).toBe(true);
  });

  it('an unreadable history is moved aside, never overwritten, and the service starts empty', async () => {
    const h = await start();
    await h.core.stop();
    const path = join(h.dataDir, 'firmware/jobs.json');
    await writeFile(path, '{ torn');
    const core = await h.restart();
    expect((await core.getJobs()).jobs).toEqual([]);
    const { readdir } = await import('node:fs/promises');
    const aside = (await readdir(join(h.dataDir, 'firmware'))).filter((n) => n.startsWith('jobs.json.unreadable-'));
    expect(aside).toHaveLength(1);
    expect(await readFile(join(h.dataDir, 'firmware', aside[0]!), 'utf8')).toBe('{ torn');
  });

  it('kill -9 of the host mid-compile: the next host re-runs the compile and flashes after it', async () => {
    const root = await mkdtemp(join(tmpdir(), 'kiln-firmware-crash-'));
    const dataDir = join(root, 'data');
    const configDir = join(root, 'config');
    await mkdir(configDir, { recursive: true });
    await writeDevices(configDir, ['dev-a', 'dev-b', 'dev-c']);
    const slowKnobs = join(root, 'slow.json');
    await writeFile(slowKnobs, JSON.stringify({ default: { compileMs: 30_000, steps: 50 } }));
    const host = fileURLToPath(new URL('./fixtures/crash-host.mjs', import.meta.url));
    const child = spawn(process.execPath, [host, dataDir, configDir, slowKnobs], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    for (let i = 0; i < 400 && !out.includes('compiling'); i++) await new Promise((r) => setTimeout(r, 25));
    const ids = JSON.parse(out.split('\n')[0]!) as { compile: string; upload: string };
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));

    const h = await start({ root });
    await h.waitFor(ids.upload, S.JOB_STATUS_COMPLETED);
    expect((await h.core.getJob({ jobId: ids.compile })).job!.status).toBe(S.JOB_STATUS_COMPLETED);
    const log = await h.logs.read(ids.compile);
    // The killed host's simulator may still be running (then it is stopped first, and the notice says so) or have died of its broken pipe.
    const notice = log.lines.findIndex((l) => /^\.\.\. \[kiln restarted while this job was running; (its leftover process was stopped; )?running it again\]$/.test(l));
    expect(notice).toBeGreaterThan(0);
    expect(log.lines.slice(0, notice).some((l) => l.startsWith('[3/'))).toBe(true);
  });
});

describe('history and output', () => {
  it('keeps the latest finished job per configuration and type, and deletes the logs of pruned ones', async () => {
    const h = await start();
    const first = (await h.core.compile({ configuration: 'dev-a.yaml' })).job!;
    await h.waitFor(first.id, S.JOB_STATUS_COMPLETED);
    const second = (await h.core.compile({ configuration: 'dev-a.yaml' })).job!;
    await h.waitFor(second.id, S.JOB_STATUS_COMPLETED);
    const ids = (await h.core.getJobs()).jobs.map((j) => j.id);
    expect(ids).toEqual([second.id]);
    for (let i = 0; i < 50 && (await h.logs.list()).some((l) => l.jobId === first.id); i++) await new Promise((r) => setTimeout(r, 10));
    expect((await h.logs.list()).map((l) => l.jobId)).toEqual([second.id]);
  });

  it('a flood keeps the last 2000 lines plus the notice; a finished job is read back from the log store', async () => {
    const h = await start({ knobs: { devices: { 'dev-a': { floodLines: 10_000, floodLineBytes: 40 } } } });
    const job = (await h.core.compile({ configuration: 'dev-a.yaml' })).job!;
    await h.waitFor(job.id, S.JOB_STATUS_COMPLETED);
    const output = await h.core.getJobOutput({ jobId: job.id });
    const total = Number(output.totalLines);
    expect(total).toBeGreaterThan(10_000);
    expect(output.lines).toHaveLength(2001);
    expect(output.lines[0]).toBe(`... [output trimmed: ${total - 2000} earlier line(s) elided]`);
    const log = await h.logs.read(job.id, { tail: 1 });
    expect(output.lines.at(-1)).toBe(log.lines[0]);
  });

  it('progress events rise to 100 for a compile', async () => {
    const h = await start({ knobs: { default: { steps: 20, compileMs: 400 } } });
    const seen: number[] = [];
    const { firmwarePb } = await import('@kiln/contracts');
    h.bus.subscribe('kiln.firmware.job.progressed', (msg) => seen.push(firmwarePb.JobProgressed.decode(msg.data).progress));
    const job = (await h.core.compile({ configuration: 'dev-a.yaml' })).job!;
    const done = await h.waitFor(job.id, S.JOB_STATUS_COMPLETED);
    expect(done.progress).toBe(100);
    expect(seen.length).toBeGreaterThan(3);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
  });

  it('clear with a status removes only finished jobs with that status', async () => {
    const h = await start({ knobs: { devices: { 'dev-b': { failCompile: true } } } });
    const ok = (await h.core.compile({ configuration: 'dev-a.yaml' })).job!;
    const bad = (await h.core.compile({ configuration: 'dev-b.yaml' })).job!;
    await h.waitFor(ok.id, S.JOB_STATUS_COMPLETED);
    await h.waitFor(bad.id, S.JOB_STATUS_FAILED);
    expect((await h.core.clear({ status: S.JOB_STATUS_FAILED })).removedJobIds).toEqual([bad.id]);
    expect((await h.core.getJobs()).jobs.map((j) => j.id)).toEqual([ok.id]);
  });

  it('clear removes finished jobs and their logs but never an active one', async () => {
    const h = await start({ knobs: { devices: { 'dev-b': { compileMs: 20_000 } } } });
    const done = (await h.core.compile({ configuration: 'dev-a.yaml' })).job!;
    await h.waitFor(done.id, S.JOB_STATUS_COMPLETED);
    const running = (await h.core.compile({ configuration: 'dev-b.yaml' })).job!;
    await h.waitFor(running.id, S.JOB_STATUS_RUNNING);
    expect((await h.core.clear()).removedJobIds).toEqual([done.id]);
    expect((await h.core.getJobs()).jobs.map((j) => j.id)).toEqual([running.id]);
    await expect(h.logs.read(done.id)).rejects.toMatchObject({ code: 'not_found' });
  });
});
