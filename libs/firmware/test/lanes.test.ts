import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KilnError } from '@kiln/core';
import { describe, expect, it } from 'vitest';
import { processAlive as isAlive } from '@kiln/toolchain';
import { harnessPerTest, S, type Harness } from './harness.js';

const start = harnessPerTest();

const PREREQ = 'prerequisite job did not complete successfully';
const SUPERSEDED = 'superseded by a newer job for this configuration';

describe('install chain', () => {
  it('compiles, then releases the upload onto the upload lane; both complete and the firmware exists', async () => {
    const h = await start();
    const { compile, upload } = await h.core.install({ configuration: 'dev-a.yaml', port: '/dev/ttyUSB0' });
    expect(upload).toMatchObject({ dependsOn: compile!.id, held: true, status: S.JOB_STATUS_QUEUED });
    await h.waitFor(upload!.id, S.JOB_STATUS_COMPLETED);
    const finished = (await h.core.getJob({ jobId: compile!.id })).job!;
    expect(finished).toMatchObject({ status: S.JOB_STATUS_COMPLETED, progress: 100, exitCode: 0 });
    expect(h.toolchain.started.map((s) => s.action)).toEqual(['compile', 'upload']);
    expect(existsSync(join(h.configDir, '.esphome/build/dev-a/.pioenvs/dev-a/firmware.bin'))).toBe(true);
    const order = h.events.map((e) => `${e.event}:${e.jobId === compile!.id ? 'compile' : 'upload'}`);
    expect(order).toEqual(['queued:compile', 'queued:upload', 'started:compile', 'completed:compile', 'started:upload', 'completed:upload']);
  });

  it('a cancelled compile never spawns its upload', async () => {
    const h = await start({ knobs: { devices: { 'dev-a': { compileMs: 20_000 } } } });
    const { compile, upload } = await h.core.install({ configuration: 'dev-a.yaml', port: '/dev/ttyUSB0' });
    await h.waitForProcess('compile', 'dev-a.yaml');
    await h.core.cancel({ jobId: compile!.id });
    await h.waitFor(compile!.id, S.JOB_STATUS_CANCELLED);
    const held = await h.waitFor(upload!.id, S.JOB_STATUS_CANCELLED);
    expect(held.error).toBe(PREREQ);
    expect(held.startedAtMs).toBe(0);
    // The cascade is on disk too: a restart does not resurrect the upload.
    const saved = JSON.parse(readFileSync(join(h.dataDir, 'firmware/jobs.json'), 'utf8')) as { jobs: Array<{ id: string; status: number; error: string }> };
    expect(saved.jobs.find((j) => j.id === upload!.id)).toMatchObject({ status: S.JOB_STATUS_CANCELLED, error: PREREQ });
    await new Promise((r) => setTimeout(r, 200));
    expect(h.toolchain.started.map((s) => s.action)).toEqual(['compile']);
  });

  it('a failed compile cascades to its held upload', async () => {
    const h = await start({ knobs: { devices: { 'dev-a': { failCompile: true } } } });
    const { compile, upload } = await h.core.install({ configuration: 'dev-a.yaml', port: 'OTA' });
    const failed = await h.waitFor(compile!.id, S.JOB_STATUS_FAILED);
    expect(failed.error).toMatch(/esphome compile exited with code 1/);
    expect((await h.waitFor(upload!.id, S.JOB_STATUS_CANCELLED)).error).toBe(PREREQ);
    expect(h.toolchain.started.map((s) => s.action)).toEqual(['compile']);
  });

  it('bulk install pipelines: the next compile runs while the previous upload flashes', async () => {
    const h = await start({ knobs: { default: { compileMs: 300, uploadMs: 1_500 } } });
    const jobs = (await h.core.installBulk({ items: [
      { configuration: 'dev-a.yaml', port: 'OTA' },
      { configuration: 'dev-b.yaml', port: 'OTA' },
    ] })).jobs;
    const [compileA, uploadA, compileB, uploadB] = jobs;
    await h.waitFor(uploadB!.id, S.JOB_STATUS_COMPLETED);
    const a = (await h.core.getJob({ jobId: uploadA!.id })).job!;
    const b = (await h.core.getJob({ jobId: compileB!.id })).job!;
    // Device B compiled while device A was uploading.
    expect(b.startedAtMs).toBeLessThan(a.finishedAtMs);
    expect(b.finishedAtMs).toBeLessThan(a.finishedAtMs);
    expect((await h.core.getJob({ jobId: compileA!.id })).job!.status).toBe(S.JOB_STATUS_COMPLETED);
  });
});

describe('supersede, clean and reset', () => {
  it('a new install supersedes the running chain of the same configuration', async () => {
    const h = await start({ knobs: { devices: { 'dev-a': { compileMs: 20_000 } } } });
    const first = await h.core.install({ configuration: 'dev-a.yaml', port: 'OTA' });
    await h.waitForProcess('compile', 'dev-a.yaml');
    const second = await h.core.install({ configuration: 'dev-a.yaml', port: 'OTA' });
    expect((await h.waitFor(first.compile!.id, S.JOB_STATUS_CANCELLED)).error).toBe(SUPERSEDED);
    expect((await h.waitFor(first.upload!.id, S.JOB_STATUS_CANCELLED)).error).toBe(SUPERSEDED);
    expect((await h.core.getJob({ jobId: second.compile!.id })).job!.status).not.toBe(S.JOB_STATUS_CANCELLED);
  });

  it('clean cancels the device chain; reset_build_env cancels every active job on both lanes', async () => {
    const h = await start({ knobs: { default: { compileMs: 20_000 } } });
    const a = await h.core.install({ configuration: 'dev-a.yaml', port: 'OTA' });
    const b = (await h.core.compile({ configuration: 'dev-b.yaml' })).job!;
    await h.waitFor(a.compile!.id, S.JOB_STATUS_RUNNING);
    const clean = (await h.core.clean({ configuration: 'dev-a.yaml' })).job!;
    expect((await h.waitFor(a.compile!.id, S.JOB_STATUS_CANCELLED)).error).toBe(SUPERSEDED);
    expect((await h.waitFor(a.upload!.id, S.JOB_STATUS_CANCELLED)).error).toBe(SUPERSEDED);
    // The other device's build is untouched by a clean of dev-a (it took the free compile lane).
    await h.waitFor(b.id, S.JOB_STATUS_RUNNING);
    const reset = (await h.core.resetBuildEnv()).job!;
    for (const id of [b.id, clean.id]) expect((await h.waitFor(id, S.JOB_STATUS_CANCELLED)).error).toBe('cancelled by reset_build_env');
    await h.waitFor(reset.id, S.JOB_STATUS_COMPLETED);
    expect(existsSync(join(h.configDir, '.esphome/build'))).toBe(false);
  });
});

describe('rename', () => {
  it('renames a device on the compile lane: new YAML built and flashed, old YAML gone', async () => {
    const h = await start();
    const job = (await h.core.rename({ configuration: 'dev-a.yaml', newName: 'porch-light' })).job!;
    expect(job).toMatchObject({ type: 5, newName: 'porch-light', lane: 1 });
    await h.waitFor(job.id, S.JOB_STATUS_COMPLETED);
    expect(readFileSync(join(h.configDir, 'porch-light.yaml'), 'utf8')).toMatch(/name: porch-light/);
    expect(existsSync(join(h.configDir, 'dev-a.yaml'))).toBe(false);
    expect(existsSync(join(h.configDir, '.esphome/build/porch-light/.pioenvs/porch-light/firmware.bin'))).toBe(true);
    expect(h.toolchain.started).toEqual([{ action: 'rename', configuration: 'dev-a.yaml' }]);
  });

  it('refuses a bad new name and an existing target, queueing nothing', async () => {
    const h = await start();
    await expect(h.core.rename({ configuration: 'dev-a.yaml', newName: 'Porch Light' })).rejects.toMatchObject({ code: 'invalid_args', details: { field: 'new_name', value: 'Porch Light' } });
    await expect(h.core.rename({ configuration: 'dev-a.yaml', newName: 'dev-b' })).rejects.toMatchObject({ code: 'already_exists', details: { new_name: 'dev-b' } });
    expect((await h.core.getJobs()).jobs).toEqual([]);
  });
});

describe('cancel', () => {
  it('cancelling a queued job is persisted before the event announces it', async () => {
    const h = await start({ knobs: { default: { compileMs: 20_000 } } });
    const running = (await h.core.compile({ configuration: 'dev-a.yaml' })).job!;
    const queued = (await h.core.compile({ configuration: 'dev-b.yaml' })).job!;
    await h.waitFor(running.id, S.JOB_STATUS_RUNNING);
    let onDisk: number | undefined;
    h.bus.subscribe('kiln.firmware.job.cancelled', () => {
      const saved = JSON.parse(readFileSync(join(h.dataDir, 'firmware/jobs.json'), 'utf8')) as { jobs: Array<{ id: string; status: number }> };
      onDisk = saved.jobs.find((j) => j.id === queued.id)?.status;
    });
    await h.core.cancel({ jobId: queued.id });
    await h.waitFor(queued.id, S.JOB_STATUS_CANCELLED);
    expect(onDisk).toBe(S.JOB_STATUS_CANCELLED);
    expect(h.toolchain.started.map((s) => s.configuration)).toEqual(['dev-a.yaml']);
  });

  it('cancelling a running job kills its whole process tree', async () => {
    const h = await start({ knobs: { devices: { 'dev-a': { hang: 'compile', spawnChild: true } } } });
    const job = (await h.core.compile({ configuration: 'dev-a.yaml' })).job!;
    await h.waitFor(job.id, S.JOB_STATUS_RUNNING);
    const pidFile = join(h.configDir, '.esphome/sim-child.pid');
    for (let i = 0; i < 200 && !existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 20));
    const grandchild = Number(readFileSync(pidFile, 'utf8'));
    expect(isAlive(grandchild)).toBe(true);
    await h.core.cancel({ jobId: job.id });
    const cancelled = await h.waitFor(job.id, S.JOB_STATUS_CANCELLED);
    expect(cancelled.error).toBe('cancelled');
    for (let i = 0; i < 100 && isAlive(grandchild); i++) await new Promise((r) => setTimeout(r, 20));
    expect(isAlive(grandchild)).toBe(false);
  });

  it('cancelling a finished job is refused with its status', async () => {
    const h = await start();
    const job = (await h.core.compile({ configuration: 'dev-a.yaml' })).job!;
    await h.waitFor(job.id, S.JOB_STATUS_COMPLETED);
    await expect(h.core.cancel({ jobId: job.id })).rejects.toThrow(/already completed/);
  });
});

describe('lanes run concurrently', () => {
  it('a parked upload does not block a compile of another device', async () => {
    const h = await start({ knobs: { devices: { 'dev-a': { uploadMs: 20_000 } } } });
    const a = await h.core.install({ configuration: 'dev-a.yaml', port: 'OTA' });
    await h.waitFor(a.upload!.id, S.JOB_STATUS_RUNNING);
    const b = (await h.core.compile({ configuration: 'dev-b.yaml' })).job!;
    await h.waitFor(b.id, S.JOB_STATUS_COMPLETED);
    expect((await h.core.getJob({ jobId: a.upload!.id })).job!.status).toBe(S.JOB_STATUS_RUNNING);
    expect((await h.core.queueStatus()).upload).toMatchObject({ runningJobIds: [a.upload!.id], idle: false });
  });
});

describe('build gate', () => {
  it('a clean does not start wiping while an upload of that device is still running', async () => {
    // The upload ignores SIGTERM, so after the clean cancels it, it keeps running until SIGKILL.
    const h = await start({ knobs: { devices: { 'dev-a': { uploadMs: 20_000, ignoreSigterm: true } } }, settings: { killGraceMs: 800 } });
    const a = await h.core.install({ configuration: 'dev-a.yaml', port: 'OTA' });
    await h.waitFor(a.upload!.id, S.JOB_STATUS_RUNNING);
    const clean = (await h.core.clean({ configuration: 'dev-a.yaml' })).job!;
    const upload = await h.waitFor(a.upload!.id, S.JOB_STATUS_CANCELLED);
    const cleaned = await h.waitFor(clean.id, S.JOB_STATUS_COMPLETED);
    expect(cleaned.startedAtMs).toBeGreaterThanOrEqual(upload.finishedAtMs);
  });

  it('forget_build cancels the running compile of its configuration and removes its outputs only once the process is gone', async () => {
    const h = await start({ knobs: { devices: { 'dev-a': { compileMs: 20_000, ignoreSigterm: true } } }, settings: { killGraceMs: 800 } });
    const b = (await h.core.compile({ configuration: 'dev-b.yaml' })).job!;
    await h.waitFor(b.id, S.JOB_STATUS_COMPLETED);
    const a = (await h.core.compile({ configuration: 'dev-a.yaml' })).job!;
    await h.waitForProcess('compile', 'dev-a.yaml');
    const order: string[] = [];
    const cancelled = h.waitFor(a.id, S.JOB_STATUS_CANCELLED).then((job) => (order.push('compile ended'), job));
    await h.core.forgetBuild({ configuration: 'dev-a.yaml', deviceName: 'dev-a' });
    order.push('forgotten');
    expect((await cancelled).error).toBe('cancelled: the device was deleted');
    expect(order).toEqual(['compile ended', 'forgotten']);
    expect(existsSync(join(h.configDir, '.esphome/build/dev-a'))).toBe(false);
    expect(existsSync(join(h.configDir, '.esphome/storage/dev-a.yaml.json'))).toBe(false);
    expect(existsSync(join(h.configDir, '.esphome/build/dev-b/.pioenvs/dev-b/firmware.bin'))).toBe(true);
  });

  it('forget_build holds a job of its configuration off the lanes until the outputs are gone', async () => {
    const h = await start({ knobs: { devices: { 'dev-a': { compileMs: 20_000, ignoreSigterm: true } } }, settings: { killGraceMs: 800 } });
    const first = (await h.core.compile({ configuration: 'dev-a.yaml' })).job!;
    await h.waitForProcess('compile', 'dev-a.yaml');
    const forgotten = h.core.forgetBuild({ configuration: 'dev-a.yaml', deviceName: 'dev-a' });
    // A compile requested while the first one dies (its YAML still there) is cancelled too, never started.
    await h.waitFor(first.id, S.JOB_STATUS_RUNNING);
    const second = (await h.core.compile({ configuration: 'dev-a.yaml' })).job!;
    await forgotten;
    expect((await h.core.getJob({ jobId: second.id })).job).toMatchObject({ status: S.JOB_STATUS_CANCELLED, startedAtMs: 0 });
    expect(h.toolchain.started.filter((p) => p.configuration === 'dev-a.yaml')).toHaveLength(1);
  });

  it('forget_build refuses a bad configuration or device name before touching anything', async () => {
    const h = await start();
    await expect(h.core.forgetBuild({ configuration: '../x.yaml', deviceName: 'x' })).rejects.toMatchObject({ code: 'invalid_args', details: { field: 'configuration' } });
    await expect(h.core.forgetBuild({ configuration: 'dev-a.yaml', deviceName: '../..' })).rejects.toMatchObject({ code: 'invalid_args', details: { field: 'device_name' } });
  });

  it('an upload waits while a reset of the build tree is active', async () => {
    const h = await start({ knobs: { devices: { 'dev-a': { uploadMs: 20_000, ignoreSigterm: true } } }, settings: { killGraceMs: 800 } });
    const b = (await h.core.compile({ configuration: 'dev-b.yaml' })).job!;
    await h.waitFor(b.id, S.JOB_STATUS_COMPLETED);
    const a = await h.core.install({ configuration: 'dev-a.yaml', port: 'OTA' });
    await h.waitFor(a.upload!.id, S.JOB_STATUS_RUNNING);
    const reset = (await h.core.resetBuildEnv()).job!;
    // The reset waits for the dying upload of dev-a; meanwhile an upload of dev-b must not start.
    const uploadB = (await h.core.upload({ configuration: 'dev-b.yaml', port: 'OTA' })).job!;
    const resetDone = await h.waitFor(reset.id, S.JOB_STATUS_COMPLETED);
    const after = await h.waitFor(uploadB.id, S.JOB_STATUS_FAILED);
    expect(after.startedAtMs).toBeGreaterThanOrEqual(resetDone.finishedAtMs);
    // It found the tree wiped instead of flashing a half-deleted image.
    expect((await h.core.getJobOutput({ jobId: uploadB.id })).lines.join('\n')).toMatch(/Firmware not found/);
  });
});

describe('bad input', () => {
  const cases: Array<[string, (h: Harness) => Promise<unknown>, string, Record<string, unknown>]> = [
    ['unknown configuration', (h) => h.core.compile({ configuration: 'nope.yaml' }), 'not_found', { configuration: 'nope.yaml' }],
    ['traversal in a configuration name', (h) => h.core.install({ configuration: '../etc/passwd.yaml', port: 'OTA' }), 'invalid_args', { field: 'configuration', value: '../etc/passwd.yaml' }],
    ['absolute configuration path', (h) => h.core.clean({ configuration: '/tmp/x.yaml' }), 'invalid_args', { field: 'configuration', value: '/tmp/x.yaml' }],
    ['non-yaml configuration', (h) => h.core.compile({ configuration: 'dev-a.txt' }), 'invalid_args', { field: 'configuration', value: 'dev-a.txt' }],
    ['port that looks like a flag', (h) => h.core.upload({ configuration: 'dev-a.yaml', port: '--evil' }), 'invalid_args', { field: 'port', value: '--evil' }],
    ['unknown job id', (h) => h.core.cancel({ jobId: '0000-nope' }), 'not_found', { job_id: '0000-nope' }],
    ['job id with path characters', (h) => h.core.getJob({ jobId: '../x' }), 'invalid_args', { field: 'job_id', value: '../x' }],
    ['bulk item with a bad name (nothing of the batch queued)', (h) => h.core.installBulk({ items: [{ configuration: 'dev-a.yaml', port: 'OTA' }, { configuration: 'a/b.yaml', port: 'OTA' }] }), 'invalid_args', { field: 'items[1].configuration' }],
  ];
  it.each(cases)('%s → a clear error, nothing queued', async (_name, run, code, details) => {
    const h = await start();
    const err = await run(h).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(KilnError);
    expect(err).toMatchObject({ code, details });
    expect((await h.core.getJobs()).jobs).toEqual([]);
    expect(h.toolchain.started).toEqual([]);
  });
});
