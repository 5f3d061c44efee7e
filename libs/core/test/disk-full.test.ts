import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageHealth, writeFileAtomic } from '../src/index.js';

/** Mounting a tmpfs needs root: skipped without it locally, a failure under CI=true. */
const isRoot = process.getuid?.() === 0;

describe.runIf(!isRoot && process.env['CI'] === 'true')('atomic writes on a full disk (needs root)', () => {
  it('cannot mount a tmpfs without root', () => expect.fail('this test mounts a tmpfs and must run as root under CI'));
});

const openFds = async () => (await readdir('/proc/self/fd')).length;

describe.runIf(isRoot)('atomic writes on a full disk (a 1 MiB tmpfs)', () => {
  let base = '';
  let mount = '';
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'kiln-core-full-'));
    mount = join(base, 'mnt');
    await mkdir(mount);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mount]);
  });
  afterAll(async () => {
    if (mount) execFileSync('umount', ['-l', mount]);
    if (base) await rm(base, { recursive: true, force: true });
  });

  it('fail with no_space naming the file, leave no temp file or descriptor behind, and recover once there is room', async () => {
    const dir = join(mount, 'state');
    const filler = join(mount, 'filler');
    const handle = await open(filler, 'w');
    await handle.write(Buffer.alloc(1024 * 1024 - 64 * 1024, 0x78));
    await handle.close();
    const target = join(dir, 'jobs.json');
    const before = await openFds();
    for (let i = 0; i < 20; i++) {
      await expect(writeFileAtomic(target, 'x'.repeat(128 * 1024))).rejects.toMatchObject({ code: 'no_space', message: `no space left on device: ${target}`, details: { path: target, errno: 'ENOSPC' } });
    }
    expect(await openFds()).toBeLessThanOrEqual(before);
    expect(await readdir(dir)).toEqual([]);
    expect(storageHealth.failures).toEqual([{ dir, message: `no space left on device: ${target}` }]);

    // Room again: a recheck notices without waiting for the next real write, and a write succeeds.
    await rm(filler);
    await storageHealth.recheck();
    expect(storageHealth.failures).toEqual([]);
    await writeFileAtomic(target, 'x'.repeat(128 * 1024));
    expect(await readdir(dir)).toEqual(['jobs.json']);
  });
});
