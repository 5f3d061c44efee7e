import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError, systemClock } from '@kiln/core';
import { createRootLogger, type Logger } from '@kiln/logging';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_OFFLOADER_SETTINGS,
  LocalExecutor,
  materialiseArtifacts,
  OffloadExecutor,
  type EligibleReceiver,
  type ExecutorExit,
  type OffloaderSettings,
  type PairedReceiver,
} from '../src/index.js';
import { harnessPerTest, S, type Harness } from './harness.js';
import { ScriptedPoolBase } from './scripted-pool.js';

/**
 * remote_build/submit_job, cancel_job, download_artifacts at the firmware level: the real lanes,
 * history and local executor (simulator), the offloader scheduler, and a scripted receiver pool (the
 * gRPC transport is covered end to end in libs/gateway/test/remote-build.test.ts).
 */
const PIN_A = 'a'.repeat(64);
const PIN_B = 'b'.repeat(64);

interface Receiver extends PairedReceiver {
  pin: string;
  enabled: boolean;
}

class PinnedPool extends ScriptedPoolBase {
  readonly receivers: Receiver[] = [PIN_A, PIN_B].map((pin, i) => {
    const id = i === 0 ? 'A' : 'B';
    return { id, pin, label: `${id} (127.0.0.1:${i + 1})`, connected: true, connecting: false, version: '0.1.0', versionOk: true, enabled: true };
  });
  receiver(id: string): Receiver {
    return this.receivers.find((r) => r.id === id)!;
  }
  eligible(): EligibleReceiver[] {
    return this.receivers.filter((r) => r.enabled && r.connected && r.versionOk).map((r) => ({ id: r.id, label: r.label, reportedIdle: true, reportedAtMs: 0 }));
  }
  byPin(pin: string): PairedReceiver | undefined {
    return this.receivers.find((r) => r.pin === pin);
  }
}

const start = harnessPerTest();
let logger: Logger;
let pool: PinnedPool;
let settings: OffloaderSettings;
beforeAll(async () => {
  logger = await createRootLogger({ level: 'silent', pretty: false });
});
beforeEach(() => {
  pool = new PinnedPool();
  settings = { ...DEFAULT_OFFLOADER_SETTINGS };
});
afterEach(() => {
  // Anything still building "on a receiver" ends, so the harness can stop.
  for (const c of pool.calls) c.exit.resolve({ exitCode: null, signal: 'SIGTERM' });
});

function offloader(): Promise<Harness> {
  return start({
    devices: ['dev-a', 'dev-b', 'dev-c'],
    compileExecutor: (toolchain, configDir, groups) => {
      const executor = new OffloadExecutor({ base: new LocalExecutor(toolchain, configDir, 1, groups), settings: () => settings, maxRemoteRetries: 2, logger, clock: systemClock });
      executor.attachPool(pool);
      return executor;
    },
  });
}

async function until(ok: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`never happened: ${what}`);
}

const lost = (): ExecutorExit => ({ exitCode: null, signal: null, lost: true, error: new KilnError('unavailable', 'connection reset', {}) });
const compilesHere = (h: Harness): number => h.toolchain.started.filter((s) => s.action === 'compile').length;

describe('remote_build/submit_job: a compile pinned to one receiver', () => {
  it('runs on B while A is idle; a second job for B waits on the lane (A takes an ordinary compile meanwhile) and then runs on B', async () => {
    const h = await offloader();
    const first = (await h.core.submitJob({ pinSha256: PIN_B, configuration: 'dev-a.yaml', target: '', port: '' })).compile!;
    expect(first.receiverPin).toBe(PIN_B);
    await until(() => pool.calls.length === 1, 'first compile sent');
    expect(pool.calls[0]).toMatchObject({ receiverId: 'B', jobId: first.id });

    const second = (await h.core.submitJob({ pinSha256: PIN_B, configuration: 'dev-b.yaml', target: 'compile', port: '' })).compile!;
    const plain = (await h.core.compile({ configuration: 'dev-c.yaml' })).job!;
    await until(() => pool.calls.length === 2, 'the ordinary compile placed');
    expect(pool.calls[1]).toMatchObject({ receiverId: 'A', jobId: plain.id });
    expect((await h.core.getJob({ jobId: second.id })).job!.status).toBe(S.JOB_STATUS_QUEUED);
    expect((await h.core.queueStatus()).compile).toMatchObject({ depth: 1 });

    pool.calls[0]!.exit.resolve({ exitCode: 0, signal: null });
    await h.waitFor(first.id, S.JOB_STATUS_COMPLETED);
    await until(() => pool.calls.length === 3, 'second compile sent');
    expect(pool.calls[2]).toMatchObject({ receiverId: 'B', jobId: second.id });
    pool.calls[2]!.exit.resolve({ exitCode: 0, signal: null });
    pool.calls[1]!.exit.resolve({ exitCode: 0, signal: null });
    await h.waitFor(second.id, S.JOB_STATUS_COMPLETED);
    await h.waitFor(plain.id, S.JOB_STATUS_COMPLETED);
    expect(compilesHere(h)).toBe(0);
    expect((await h.core.getJobOutput({ jobId: second.id })).lines[0]).toMatch(/^\.\.\. \[compiling on receiver B \(127\.0\.0\.1:2\)/);
  });

  it('B lost mid-build: the job fails naming B, is not retried on A nor built here, and its install upload is cancelled', async () => {
    const h = await offloader();
    const { compile, upload } = await h.core.submitJob({ pinSha256: PIN_B, configuration: 'dev-a.yaml', target: 'install', port: 'OTA' });
    expect(upload).toMatchObject({ dependsOn: compile!.id, port: 'OTA', receiverPin: '', held: true });
    await until(() => pool.calls.length === 1, 'compile sent');
    pool.calls[0]!.exit.resolve(lost());
    const failed = await h.waitFor(compile!.id, S.JOB_STATUS_FAILED);
    expect(failed.error).toBe('receiver B (127.0.0.1:2) lost the build (connection reset); the job was sent to that receiver, so it is not retried elsewhere');
    expect((await h.core.getJob({ jobId: upload!.id })).job!.status).toBe(S.JOB_STATUS_CANCELLED);
    expect(pool.calls).toHaveLength(1);
    expect(compilesHere(h)).toBe(0);
  });

  it('a job waiting for B fails naming B when B disconnects', async () => {
    const h = await offloader();
    const first = (await h.core.submitJob({ pinSha256: PIN_B, configuration: 'dev-a.yaml', target: '', port: '' })).compile!;
    await until(() => pool.calls.length === 1, 'first compile sent');
    const waiting = (await h.core.submitJob({ pinSha256: PIN_B, configuration: 'dev-b.yaml', target: '', port: '' })).compile!;
    Object.assign(pool.receiver('B'), { connected: false });
    pool.changed();
    expect((await h.waitFor(waiting.id, S.JOB_STATUS_FAILED)).error).toBe('receiver B (127.0.0.1:2) is not connected');
    pool.calls[0]!.exit.resolve(lost());
    await h.waitFor(first.id, S.JOB_STATUS_FAILED);
    expect(pool.calls).toHaveLength(1);
    expect(compilesHere(h)).toBe(0);
  });

  it('a manual send ignores remote_builds_enabled=false and a disabled pairing; it takes no local slot (an ordinary compile runs here alongside)', async () => {
    settings.remote_builds_enabled = false;
    pool.receiver('B').enabled = false;
    const h = await offloader();
    const sent = (await h.core.submitJob({ pinSha256: PIN_B, configuration: 'dev-a.yaml', target: '', port: '' })).compile!;
    await until(() => pool.calls.length === 1, 'compile sent');
    expect(pool.calls[0]).toMatchObject({ receiverId: 'B', jobId: sent.id });
    const plain = (await h.core.compile({ configuration: 'dev-b.yaml' })).job!;
    await h.waitFor(plain.id, S.JOB_STATUS_COMPLETED);
    expect(compilesHere(h)).toBe(1);
    expect((await h.core.getJob({ jobId: sent.id })).job!.status).toBe(S.JOB_STATUS_RUNNING);
    pool.calls[0]!.exit.resolve({ exitCode: 0, signal: null });
    await h.waitFor(sent.id, S.JOB_STATUS_COMPLETED);
  });

  it('refuses what cannot be sent, naming the value, and creates no job', async () => {
    const h = await offloader();
    await expect(h.core.submitJob({ pinSha256: 'c'.repeat(64), configuration: 'dev-a.yaml', target: '', port: '' })).rejects.toMatchObject({ code: 'not_found', message: `no receiver is paired with pin ${'c'.repeat(64)}` });
    await expect(h.core.submitJob({ pinSha256: 'not-a-pin', configuration: 'dev-a.yaml', target: '', port: '' })).rejects.toMatchObject({ code: 'invalid_args', details: { field: 'pin_sha256' } });
    await expect(h.core.submitJob({ pinSha256: PIN_B, configuration: 'dev-a.yaml', target: 'flash', port: '' })).rejects.toMatchObject({ code: 'invalid_args', details: { field: 'target', value: 'flash' }, message: expect.stringContaining('"flash"') });
    await expect(h.core.submitJob({ pinSha256: PIN_B, configuration: 'dev-a.yaml', target: 'compile', port: 'OTA' })).rejects.toMatchObject({ code: 'invalid_args', details: { field: 'port' } });
    await expect(h.core.submitJob({ pinSha256: PIN_B, configuration: 'nope.yaml', target: '', port: '' })).rejects.toMatchObject({ code: 'not_found', details: { configuration: 'nope.yaml' } });
    Object.assign(pool.receiver('B'), { connected: false });
    await expect(h.core.submitJob({ pinSha256: PIN_B, configuration: 'dev-a.yaml', target: '', port: '' })).rejects.toMatchObject({ code: 'unavailable', message: 'receiver B (127.0.0.1:2) is not connected' });
    Object.assign(pool.receiver('A'), { versionOk: false, version: '0.2.0' });
    await expect(h.core.submitJob({ pinSha256: PIN_A, configuration: 'dev-a.yaml', target: '', port: '' })).rejects.toMatchObject({ code: 'failed_precondition', message: 'receiver A (127.0.0.1:1) runs Kiln 0.2.0, which version_match_policy "any" refuses' });
    expect((await h.core.getJobs()).jobs).toEqual([]);
  });

  it('cancel_job: only under the pin it was sent to; stops the build on the receiver', async () => {
    const h = await offloader();
    const sent = (await h.core.submitJob({ pinSha256: PIN_B, configuration: 'dev-a.yaml', target: '', port: '' })).compile!;
    const plain = (await h.core.compile({ configuration: 'dev-b.yaml' })).job!;
    await until(() => pool.calls.length === 2, 'both compiles placed');
    await expect(h.core.cancelJob({ pinSha256: PIN_A, jobId: sent.id })).rejects.toMatchObject({ code: 'not_found', message: `job ${sent.id} was not submitted to the receiver with pin ${PIN_A}` });
    await expect(h.core.cancelJob({ pinSha256: PIN_B, jobId: plain.id })).rejects.toMatchObject({ code: 'not_found' });
    await expect(h.core.cancelJob({ pinSha256: PIN_B, jobId: 'no-such-job' })).rejects.toMatchObject({ code: 'not_found' });
    await h.core.cancelJob({ pinSha256: PIN_B, jobId: sent.id });
    await h.waitFor(sent.id, S.JOB_STATUS_CANCELLED);
    expect(pool.calls.find((c) => c.jobId === sent.id)!.signal.aborted).toBe(true);
    expect(pool.calls.find((c) => c.jobId === plain.id)!.signal.aborted).toBe(false);
  });

  it('download_artifacts: the materialised images at their flash offsets, byte for byte; refused before completion and once a later build replaced them', async () => {
    const h = await offloader();
    const sent = (await h.core.submitJob({ pinSha256: PIN_B, configuration: 'dev-a.yaml', target: '', port: '' })).compile!;
    await until(() => pool.calls.length === 1, 'compile sent');
    await expect(h.core.downloadArtifacts({ pinSha256: PIN_B, jobId: sent.id })).rejects.toMatchObject({ code: 'failed_precondition', message: `job ${sent.id} is running, not completed: it has no artifacts` });
    await expect(h.core.downloadArtifacts({ pinSha256: PIN_B, jobId: 'no-such-job' })).rejects.toMatchObject({ code: 'not_found' });
    const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * seed) & 0xff);
    const files = { 'firmware.bin': bytes(70_000, 7), 'bootloader.bin': bytes(3_000, 3), 'partitions.bin': bytes(512, 5) };
    const layout = { flashImages: [{ name: 'bootloader.bin', offset: '0x1000' }, { name: 'partitions.bin', offset: '0x8000' }] };
    await materialiseArtifacts(h.configDir, 'dev-a.yaml', 'dev-a', [...Object.entries(files).map(([name, data]) => ({ name, data })), { name: 'idedata.json', data: Buffer.from(JSON.stringify(layout)) }]);
    pool.calls[0]!.exit.resolve({ exitCode: 0, signal: null });
    await h.waitFor(sent.id, S.JOB_STATUS_COMPLETED);

    const set = await h.core.downloadArtifacts({ pinSha256: PIN_B, jobId: sent.id });
    expect(set.configuration).toBe('dev-a.yaml');
    expect(set.images.map(({ name, offset, size }) => ({ name, offset, size }))).toEqual([
      { name: 'firmware.bin', offset: 0x10000, size: 70_000 },
      { name: 'bootloader.bin', offset: 0x1000, size: 3_000 },
      { name: 'partitions.bin', offset: 0x8000, size: 512 },
    ]);
    for (const image of set.images) {
      const read = await h.core.readArtifact({ configuration: 'dev-a.yaml', file: image.name, offset: 0, length: 0 });
      expect(Buffer.from(read.data).equals(Buffer.from(files[image.name as keyof typeof files]))).toBe(true);
    }
    await expect(h.core.downloadArtifacts({ pinSha256: PIN_A, jobId: sent.id })).rejects.toMatchObject({ code: 'not_found' });

    const later = (await h.core.submitJob({ pinSha256: PIN_B, configuration: 'dev-a.yaml', target: '', port: '' })).compile!;
    await until(() => pool.calls.length === 2, 'later compile sent');
    await expect(h.core.downloadArtifacts({ pinSha256: PIN_B, jobId: sent.id })).rejects.toMatchObject({ code: 'failed_precondition', details: { later_job_id: later.id } });
  });

  it('download_artifacts: an ESP8266 app image is at 0x0 (its platformio.ini, sent with the images, names the platform)', async () => {
    const h = await offloader();
    const sent = (await h.core.submitJob({ pinSha256: PIN_B, configuration: 'dev-a.yaml', target: '', port: '' })).compile!;
    await until(() => pool.calls.length === 1, 'compile sent');
    const ini = '[env:dev-a]\nboard = d1_mini\nframework = arduino\nplatform = platformio/espressif8266@4.2.1\n';
    await materialiseArtifacts(h.configDir, 'dev-a.yaml', 'dev-a', [
      { name: 'firmware.bin', data: new Uint8Array(4096) },
      { name: 'idedata.json', data: Buffer.from(JSON.stringify({ flashImages: [] })) },
      { name: 'platformio.ini', data: Buffer.from(ini) },
    ]);
    pool.calls[0]!.exit.resolve({ exitCode: 0, signal: null });
    await h.waitFor(sent.id, S.JOB_STATUS_COMPLETED);
    expect((await h.core.downloadArtifacts({ pinSha256: PIN_B, jobId: sent.id })).images.map(({ name, offset }) => ({ name, offset }))).toEqual([{ name: 'firmware.bin', offset: 0 }]);
  });

  it('the pin is persisted with the job: after a restart the restored jobs run on B again, one at a time', async () => {
    const h = await offloader();
    const running = (await h.core.submitJob({ pinSha256: PIN_B, configuration: 'dev-a.yaml', target: '', port: '' })).compile!;
    await until(() => pool.calls.length === 1, 'compile sent');
    const queued = (await h.core.submitJob({ pinSha256: PIN_B, configuration: 'dev-b.yaml', target: '', port: '' })).compile!;
    const saved = JSON.parse(await readFile(join(h.dataDir, 'firmware/jobs.json'), 'utf8')) as { jobs: Array<{ id: string; receiverPin: string }> };
    expect(saved.jobs.map((j) => [j.id, j.receiverPin])).toEqual([
      [running.id, PIN_B],
      [queued.id, PIN_B],
    ]);
    await h.restart();
    expect((await h.core.getJob({ jobId: queued.id })).job!.receiverPin).toBe(PIN_B);
    await until(() => pool.calls.length === 2, 'the interrupted compile sent again');
    expect(pool.calls[1]).toMatchObject({ receiverId: 'B', jobId: running.id });
    expect((await h.core.getJob({ jobId: queued.id })).job!.status).toBe(S.JOB_STATUS_QUEUED);
    pool.calls[1]!.exit.resolve({ exitCode: 0, signal: null });
    await until(() => pool.calls.length === 3, 'the queued compile sent');
    expect(pool.calls[2]).toMatchObject({ receiverId: 'B', jobId: queued.id });
    pool.calls[2]!.exit.resolve({ exitCode: 0, signal: null });
    await h.waitFor(queued.id, S.JOB_STATUS_COMPLETED);
    expect(compilesHere(h)).toBe(0);
  });
});
