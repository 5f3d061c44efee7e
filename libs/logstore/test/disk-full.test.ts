import { execFileSync } from 'node:child_process';
import { mkdir, open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError, storageHealth } from '@kiln/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeStore, tempDir } from './helpers.js';

/** Mounting a tmpfs needs root: skipped without it locally, a failure under CI=true. */
const isRoot = process.getuid?.() === 0;

describe.runIf(!isRoot && process.env['CI'] === 'true')('the log store on a full disk (needs root)', () => {
  it('cannot mount a tmpfs without root', () => expect.fail('this test mounts a tmpfs and must run as root under CI'));
});

const openFds = async () => (await readdir('/proc/self/fd')).length;

/** Write until the file system refuses. */
async function fill(path: string): Promise<void> {
  const handle = await open(path, 'w');
  try {
    for (const size of [64 * 1024, 4096, 1]) {
      const chunk = Buffer.alloc(size, 0x78);
      for (;;) {
        const written = await handle.write(chunk).then((r) => r.bytesWritten, () => 0);
        if (written < size) break;
      }
    }
  } finally {
    await handle.close();
  }
}

describe.runIf(isRoot)('the log store on a full disk (a 1 MiB tmpfs)', () => {
  let root: { dir: string; cleanup(): Promise<void> };
  let mount = '';
  beforeAll(async () => {
    root = await tempDir();
    mount = join(root.dir, 'mnt');
    await mkdir(mount);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mount]);
  });
  afterAll(async () => {
    // Lazy: a failed test may leave a log open on it.
    if (mount) execFileSync('umount', ['-l', mount]);
    await root?.cleanup();
  });

  it('a log whose last write fails is still released: no descriptor leaks, the error says no space, naming the file', async () => {
    const store = await makeStore(mount, { flushIntervalMs: 10_000 });
    await fill(join(mount, 'filler'));
    const before = await openFds();
    for (let i = 0; i < 20; i++) {
      await store.append(`job-${i}`, [`line of job ${i}`]);
      const closing = store.close(`job-${i}`);
      await expect(closing).rejects.toBeInstanceOf(KilnError);
      await expect(closing).rejects.toMatchObject({ code: 'no_space', message: `no space left on device: ${store.pathOf(`job-${i}`)}` });
    }
    expect(await openFds()).toBeLessThanOrEqual(before);
    expect(storageHealth.failures).toContainEqual({ dir: store.dir, message: expect.stringMatching(/^no space left on device: /) });
  });

  it('a background flush that fails is reported to the next append, not thrown into the void', async () => {
    const unhandled = vi.fn();
    process.on('unhandledRejection', unhandled);
    try {
      const store = await makeStore(join(mount, 'timed'), { flushIntervalMs: 1 });
      await store.append('timed', ['a line the timer will try to write']);
      // The timer's write failed once the directory is reported full.
      await vi.waitFor(() => expect(storageHealth.failures.map((f) => f.dir)).toContain(store.dir));
      await expect(store.append('timed', ['next'])).rejects.toMatchObject({ code: 'no_space' });
      expect((await readFile(store.pathOf('timed'))).length).toBe(0);
      expect(unhandled).not.toHaveBeenCalled();
    } finally {
      process.off('unhandledRejection', unhandled);
    }
  });
});
