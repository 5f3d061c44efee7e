import { readdirSync, readFileSync } from 'node:fs';
import { busSubject, encode, firmwareWorkerPb as wpb, firmwareWorkerSubjects } from '@kiln/contracts';
import { processAlive } from '@kiln/toolchain';
import { describe, expect, it } from 'vitest';
import { harnessPerTest, S, type Harness } from './harness.js';

const start = harnessPerTest();

async function until<T>(fn: () => Promise<T> | T, ok: (v: T) => boolean, what: string): Promise<T> {
  for (let i = 0; i < 600; i++) {
    const v = await fn();
    if (ok(v)) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`never: ${what}`);
}

/** Live processes whose command line mentions `text` (the simulator's YAML path under this test's temp dir). */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text) && processAlive(Number(entry))) pids.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

/** A worker that takes a job and then says nothing more (a hung or partitioned host): only its heartbeats stop. */
function silentWorker(h: Harness, id: string): { accepted: string[]; stopBeating(): void } {
  const accepted: string[] = [];
  const beat = () => h.bus.publish(firmwareWorkerSubjects.heartbeat, encode(wpb.WorkerHeartbeat, { workerId: id, instance: `${id}-1`, jobId: '', intervalMs: 50, pid: 1, host: 'fake' }));
  const timer = setInterval(beat, 50);
  beat();
  // Serves `run` only: a cancel finds nobody.
  const serving = h.bus.respond(busSubject(wpb.WorkerServiceDefinition, 'run', id), (msg) => {
    accepted.push(wpb.WorkerRunRequest.decode(msg.data).jobId);
    clearInterval(timer);
    return encode(wpb.WorkerRunReply, { workerId: id, instance: `${id}-1` });
  });
  return {
    accepted,
    stopBeating() {
      clearInterval(timer);
      serving.unsubscribe();
    },
  };
}

const log = async (h: Harness, jobId: string) => (await h.logs.read(jobId)).lines;

describe('compile workers (firmware.compileExecutor=workers)', () => {
  it('compile jobs wait for a worker, then run on it; the log reads as a local compile, the upload stays local', async () => {
    const h = await start({ workers: true });
    const { compile, upload } = await h.core.install({ configuration: 'dev-a.yaml', port: 'OTA' });
    await new Promise((r) => setTimeout(r, 100));
    expect((await h.core.getJob({ jobId: compile!.id })).job!.status).toBe(S.JOB_STATUS_QUEUED);
    expect((await h.core.queueStatus()).compile).toMatchObject({ slots: 0, depth: 1 });
    await h.startWorker('w1');
    await h.waitFor(upload!.id, S.JOB_STATUS_COMPLETED);
    expect((await h.core.getJob({ jobId: compile!.id })).job!).toMatchObject({ status: S.JOB_STATUS_COMPLETED, progress: 100, exitCode: 0 });
    expect((await h.core.queueStatus()).compile.slots).toBe(1);
    const lines = await log(h, compile!.id);
    expect(lines[0]).toMatch(/esphome-sim: simulated toolchain/);
    expect(lines.at(-1)).toMatch(/Successfully compiled program/);
    // The harness's own toolchain ran only the upload: the compile ran on the worker.
    expect(h.toolchain.started.map((s) => s.action)).toEqual(['upload']);
    expect((await h.core.getJobOutput({ jobId: compile!.id })).lines.at(-1)).toMatch(/Successfully compiled program/);
  });

  it('two workers run two compiles at once: compile capacity is the number of live workers', async () => {
    const h = await start({ workers: true, knobs: { default: { compileMs: 1_500, steps: 5 } } });
    await h.startWorker('w1');
    await h.startWorker('w2');
    await until(() => h.core.queueStatus(), (q) => q.compile!.slots === 2, 'two workers joined');
    const jobs = (await h.core.compileBulk({ configurations: ['dev-a.yaml', 'dev-b.yaml', 'dev-c.yaml'] })).jobs;
    const busy = await until(() => h.core.queueStatus(), (q) => q.compile!.runningJobIds.length === 2, 'two compiles running');
    expect(busy.compile!.depth).toBe(1);
    for (const job of jobs) expect((await h.waitFor(job.id, S.JOB_STATUS_COMPLETED)).exitCode).toBe(0);
  });

  it('cancel reaches the worker: the process tree is gone and the job ends cancelled', async () => {
    const h = await start({ workers: true, knobs: { default: { compileMs: 30_000 } } });
    await h.startWorker('w1');
    const job = (await h.core.compile({ configuration: 'dev-a.yaml' })).job!;
    await h.waitFor(job.id, S.JOB_STATUS_RUNNING);
    await until(() => processesMentioning(h.configDir), (p) => p.length > 0, 'the simulator runs');
    await h.core.cancel({ jobId: job.id });
    expect((await h.waitFor(job.id, S.JOB_STATUS_CANCELLED)).error).toBe('cancelled');
    expect(processesMentioning(h.configDir)).toEqual([]);
    // The worker is free again: the next compile runs on it.
    const next = (await h.core.compile({ configuration: 'dev-b.yaml' })).job!;
    await h.waitFor(next.id, S.JOB_STATUS_RUNNING);
  });

  it('a worker stopped mid-job: the job runs again on another worker, and its log says why', async () => {
    const h = await start({ workers: true, knobs: { devices: { 'dev-a': { compileMs: 30_000 } }, default: { compileMs: 200 } } });
    const w1 = await h.startWorker('w1');
    const job = (await h.core.compile({ configuration: 'dev-a.yaml' })).job!;
    await h.waitFor(job.id, S.JOB_STATUS_RUNNING);
    await until(() => log(h, job.id).catch(() => []), (l) => l.length > 1, 'output from w1');
    await w1.stop();
    await until(async () => (await h.core.getJob({ jobId: job.id })).job!, (j) => j.status === S.JOB_STATUS_QUEUED, 'the job is queued again');
    expect(processesMentioning(h.configDir)).toEqual([]);
    await h.startWorker('w2');
    await until(() => log(h, job.id), (l) => l.includes('... [running the job again (once) after its executor lost it]'), 'the re-run notice');
    const lines = await log(h, job.id);
    expect(lines).toContain('... [compile worker w1 stopped]');
    expect(lines.indexOf('... [compile worker w1 stopped]')).toBeLessThan(lines.indexOf('... [running the job again (once) after its executor lost it]'));
    expect((await h.core.getJob({ jobId: job.id })).job!.status).toBe(S.JOB_STATUS_RUNNING);
  });

  it('a silent worker is lost after the timeout: the job re-runs once; lost again, it fails with the loss as its error', async () => {
    const h = await start({ workers: true, settings: { workerTimeoutMs: 300 } });
    const first = silentWorker(h, 'hung1');
    const job = (await h.core.compile({ configuration: 'dev-a.yaml' })).job!;
    await until(() => first.accepted, (a) => a.includes(job.id), 'hung1 took the job');
    await until(async () => (await h.core.getJob({ jobId: job.id })).job!, (j) => j.status === S.JOB_STATUS_QUEUED, 'requeued after the timeout');
    first.stopBeating();
    const second = silentWorker(h, 'hung2');
    const failed = await h.waitFor(job.id, S.JOB_STATUS_FAILED);
    second.stopBeating();
    expect(second.accepted).toEqual([job.id]);
    expect(failed.error).toBe('compile worker hung2 sent no heartbeat for 300 ms');
    const lines = await log(h, job.id);
    expect(lines).toEqual([
      '... [compile worker hung1 sent no heartbeat for 300 ms]',
      '... [running the job again (once) after its executor lost it]',
      '... [compile worker hung2 sent no heartbeat for 300 ms]',
    ]);
  });
});
