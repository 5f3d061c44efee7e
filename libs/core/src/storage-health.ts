import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { KilnError } from './errors.js';

/** The errno codes that mean "this write cannot succeed until someone frees space or remounts". */
const NO_SPACE: Readonly<Record<string, string>> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
};

/** Whether `err` is a write failure for lack of space (an errno error or an already-mapped KilnError). */
export function isNoSpaceError(err: unknown): boolean {
  if (err instanceof KilnError) return err.code === 'no_space';
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && code in NO_SPACE;
}

/**
 * A failed write to `path` as callers should see it: ENOSPC/EDQUOT/EROFS become `no_space`
 * ("no space left on device: <path>") and are recorded in `storageHealth`; anything else is returned
 * unchanged.
 */
export function writeFailure(path: string, err: unknown): unknown {
  if (!isNoSpaceError(err)) return err;
  if (err instanceof KilnError) return err;
  const errno = (err as NodeJS.ErrnoException).code!;
  const error = new KilnError('no_space', `${NO_SPACE[errno]}: ${path}`, { path, errno }, { cause: err });
  storageHealth.failed(path, error.message);
  return error;
}

export interface StorageFailure {
  /** The directory a write failed in. */
  dir: string;
  message: string;
}

/**
 * Which directories this process could not write to for lack of space, so health can say "degraded"
 * while they stay full. A directory recovers when a write in it succeeds again, or when `recheck`
 * (run by the health endpoint) manages to write a probe there — so freeing space through any route
 * (firmware/clear, an operator's rm) is noticed without waiting for the next real write.
 * One per process: the disk is shared by every service a process hosts.
 */
class StorageHealth {
  readonly #failures = new Map<string, string>();
  #rechecking: Promise<void> | undefined;

  failed(path: string, message: string): void {
    this.#failures.set(dirname(path), message);
  }

  /** A write to `path` went through: its directory has room again. Cheap when nothing failed. */
  succeeded(path: string): void {
    if (this.#failures.size > 0) this.#failures.delete(dirname(path));
  }

  get failures(): StorageFailure[] {
    return [...this.#failures].map(([dir, message]) => ({ dir, message }));
  }

  /** Try a small write in each failing directory; those that take it are healthy again. */
  recheck(): Promise<void> {
    if (this.#failures.size === 0) return Promise.resolve();
    this.#rechecking ??= (async () => {
      for (const dir of [...this.#failures.keys()]) {
        const probe = join(dir, `.kiln-space-probe-${randomBytes(4).toString('hex')}`);
        try {
          // One page: what the smallest real write (a job-state file, a log batch) needs at least.
          await writeFile(probe, Buffer.alloc(4096));
          this.#failures.delete(dir);
        } catch {
          // Still full (or gone): stays degraded.
        } finally {
          await rm(probe, { force: true }).catch(() => undefined);
        }
      }
    })().finally(() => (this.#rechecking = undefined));
    return this.#rechecking;
  }
}

export const storageHealth = new StorageHealth();
