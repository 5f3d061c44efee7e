import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { storageHealth, writeFailure } from './storage-health.js';

/**
 * Write a file so a reader (or a restart after kill -9) sees either the old content or the new,
 * never a torn mix: write a sibling temp file, fsync it, rename over the target, fsync the directory.
 * A full disk (ENOSPC, EDQUOT, EROFS) is thrown as `no_space` naming `path`; on every failure the
 * temp file is removed and its descriptor closed.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let handle: FileHandle | undefined;
  try {
    await mkdir(dir, { recursive: true });
    handle = await open(tmp, 'w', mode);
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(tmp, path);
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await rm(tmp, { force: true }).catch(() => undefined);
    throw writeFailure(path, err);
  }
  storageHealth.succeeded(path);
  await syncDirectory(dir);
}

/** fsync a directory so a rename inside it survives power loss. Best effort where unsupported. */
export async function syncDirectory(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic there.
  } finally {
    await handle?.close();
  }
}
