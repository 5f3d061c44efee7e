import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, open, readdir, rm, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SIM_BIN } from '@kiln/esphome-sim';
import { GatewayClient, type Frame } from '@kiln/gateway';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EPHEMERAL, runKiln, startKiln, type Running } from './cli-harness.js';

/**
 * A real `kiln supervise` whose data dir and config dir live on a 2 MiB tmpfs that a job's output
 * fills. Mounting needs root: without it the test is skipped locally, but fails under CI=true (a CI
 * that cannot run it must say so, not pass quietly).
 */
const isRoot = process.getuid?.() === 0;
const underCi = process.env['CI'] === 'true';

const errorOf = (f: Frame) => f as { error_code?: string; details?: { message?: string } };

async function openFds(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

/** Write to `path` until the file system refuses: then it is full (tmpfs counts whole pages). */
async function fill(path: string): Promise<void> {
  const handle = await open(path, 'w');
  try {
    for (const size of [64 * 1024, 4096, 1]) {
      const chunk = Buffer.alloc(size, 0x78);
      for (;;) {
        try {
          if ((await handle.write(chunk)).bytesWritten < size) break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    await handle.close();
  }
}

async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

describe.runIf(!isRoot && underCi)('a full disk (needs root)', () => {
  it('cannot mount a tmpfs without root', () => {
    expect.fail('the disk-full test mounts a tmpfs and must run as root under CI');
  });
});

describe.runIf(isRoot)('a full disk (data dir and config dir on a 2 MiB tmpfs)', () => {
  let base = '';
  let mount = '';
  let kiln: Running;
  let client: GatewayClient;
  let healthUrl = '';
  let mounted = false;

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'kiln-disk-full-'));
    mount = join(base, 'mnt');
    await mkdir(mount);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mount]);
    mounted = true;
    const configDir = join(mount, 'config');
    await mkdir(configDir, { recursive: true });
    await writeFile(join(configDir, 'hall.yaml'), 'esphome:\n  name: hall\nesp32:\n  board: esp32dev\n');
    kiln = startKiln(['supervise', ...EPHEMERAL, '--config-dir', configDir, '--set', `firmware.toolchain=${SIM_BIN}`], join(mount, 'data'), {
      // 4 MB of output: twice the disk.
      ESPHOME_SIM_KNOBS_JSON: JSON.stringify({ default: { compileMs: 50, steps: 2, floodLines: 40_000, floodLineBytes: 100 } }),
    });
    healthUrl = await kiln.healthUrl();
    const status = JSON.parse((await runKiln(['status', '--data-dir', kiln.dataDir, '--json'])).stdout) as Array<{ services: Array<{ name: string; health: { detail: Record<string, string> } }> }>;
    const http = status[0]!.services.find((s) => s.name === 'gateway')!.health.detail.url!;
    client = await GatewayClient.connect(`${http.replace('http', 'ws')}/ws`);
    await client.next((f) => f.event === 'server_info');
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await kiln?.stop();
    if (mounted) execFileSync('umount', [mount]);
    if (base) await rm(base, { recursive: true, force: true });
  });

  it('says "no space left on device" everywhere, leaks no descriptor, and firmware/clear frees the disk', async () => {
    const fdsBefore = await openFds(kiln.child.pid!);
    expect((await fetch(`${healthUrl}/health`)).status).toBe(200);

    // A job whose log fills the disk fails saying why, not just "exited with code 1".
    const job = (await client.call('firmware/compile', { configuration: 'hall.yaml' })).result as { id: string };
    const done = (await client.call('firmware/follow_job', { job_id: job.id })).result as { status: string; error: string };
    expect(done.status).toBe('failed');
    expect(done.error).toMatch(/no space left on device/);

    // Whatever the failed batches left free (a partial batch is cut off again) is taken now: the disk is full.
    await fill(join(mount, 'filler'));

    // Device writes and new jobs: a clear code and message, again and again, without a descriptor left open.
    for (let i = 0; i < 15; i++) {
      const created = errorOf(await client.call('devices/create', { name: `Porch ${i}`, platform: 'esp32' }));
      expect(created.error_code).toBe('no_space');
      expect(created.details?.message).toMatch(new RegExp(`^no space left on device: .*porch-${i}\\.yaml$`));
      const updated = errorOf(await client.call('devices/update_config', { configuration: 'hall.yaml', content: `esphome:\n  name: hall\n# ${'x'.repeat(8000)}\n` }));
      expect(updated.error_code).toBe('no_space');
      const compile = errorOf(await client.call('firmware/compile', { configuration: 'hall.yaml' }));
      expect(compile.error_code).toBe('no_space');
      expect(compile.details?.message).toMatch(/^no space left on device: .*jobs\.json$/);
    }
    expect(await openFds(kiln.child.pid!)).toBeLessThanOrEqual(fdsBefore);
    // Health: not ready while writes fail for lack of space, naming the place.
    const full = await fetch(`${healthUrl}/health`);
    expect(full.status).toBe(503);
    const body = (await full.json()) as { ready: boolean; degraded: Array<{ message: string }> };
    expect(body.ready).toBe(false);
    expect(body.degraded.map((d) => d.message).join('\n')).toMatch(/no space left on device: /);
    // A refused compile left no job behind.
    expect(((await client.call('firmware/get_jobs')).result as unknown[]).length).toBe(1);

    // firmware/clear works on the full disk and gives the space back; health recovers.
    const freeWhenFull = await freeBytes(mount);
    const cleared = (await client.call('firmware/clear')).result as { removed: string[] };
    expect(cleared.removed).toEqual([job.id]);
    expect(await freeBytes(mount)).toBeGreaterThan(freeWhenFull + 1024 * 1024);
    expect((await fetch(`${healthUrl}/health`)).status).toBe(200);
    expect((await client.call('devices/create', { name: 'Porch', platform: 'esp32' })).result).toMatchObject({ configuration: 'porch.yaml' });
  }, 120_000);
});
