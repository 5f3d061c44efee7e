import { createHash, randomBytes } from 'node:crypto';
import { access, mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { assertSafeId, KilnError } from '@kiln/core';
import { walkBundle, type BundleLimits } from '@kiln/remote-identity';

const SHA256_HEX = /^[0-9a-f]{64}$/;

export function assertSha256(field: string, value: string): string {
  if (!SHA256_HEX.test(value)) throw new KilnError('invalid_args', `${field}: must be 64 lower-case hex digits, got ${JSON.stringify(value)}`, { field, value });
  return value;
}

/** One incoming bundle: bytes are hashed and counted as they arrive and refused past the cap. */
export interface BundleUpload {
  write(chunk: Uint8Array): Promise<void>;
  /** Verify size and hash, check the archive, and publish it under its hash. */
  commit(): Promise<{ sha256: string; sizeBytes: number }>;
  abort(): Promise<void>;
}

/**
 * Bundles by content, per offloader: `<dir>/<dashboard_id>/<sha256>.tar.gz` (one peer can neither
 * probe for nor build from another's bundles). A bundle is published (renamed into place) only after
 * its size, hash and every entry passed, so `has()` never answers yes for a partial or bad one.
 */
export class BundleStore {
  constructor(private readonly dir: string, private readonly maxBytes: number, private readonly limits: BundleLimits) {}

  path(owner: string, sha256: string): string {
    return join(this.dir, assertSafeId('dashboard_id', owner), `${assertSha256('sha256', sha256)}.tar.gz`);
  }

  async has(owner: string, sha256: string): Promise<boolean> {
    return access(this.path(owner, sha256)).then(() => true, () => false);
  }

  async begin(owner: string, header: { sha256: string; sizeBytes: number }): Promise<BundleUpload> {
    const sha256 = assertSha256('header.sha256', header.sha256);
    if (header.sizeBytes > this.maxBytes) throw tooLarge(header.sizeBytes, this.maxBytes);
    const final = this.path(owner, sha256);
    await mkdir(dirname(final), { recursive: true });
    const tmp = join(dirname(final), `.incoming-${randomBytes(6).toString('hex')}`);
    const handle = await open(tmp, 'wx', 0o600);
    const hash = createHash('sha256');
    let size = 0;
    let closed = false;
    const close = async (): Promise<void> => {
      if (!closed) await handle.close();
      closed = true;
    };
    return {
      write: async (chunk) => {
        size += chunk.length;
        // Checked per chunk: an oversize bundle stops here, not after it filled the disk.
        if (size > this.maxBytes) throw tooLarge(size, this.maxBytes);
        hash.update(chunk);
        await handle.write(chunk);
      },
      commit: async () => {
        await handle.sync();
        await close();
        const got = hash.digest('hex');
        if (size !== header.sizeBytes) throw new KilnError('invalid_args', `bundle: received ${size} bytes, header announced ${header.sizeBytes}`, { field: 'bundle', size });
        if (got !== sha256) throw new KilnError('invalid_args', `bundle: SHA-256 mismatch (announced ${sha256}, received ${got})`, { field: 'bundle', expected: sha256, got });
        await walkBundle(tmp, this.limits);
        await rename(tmp, final);
        return { sha256, sizeBytes: size };
      },
      abort: async () => {
        await close();
        await rm(tmp, { force: true });
      },
    };
  }
}

function tooLarge(size: number, max: number): KilnError {
  return new KilnError('invalid_args', `bundle: ${size} bytes exceeds the receiver's ${max}-byte cap`, { field: 'bundle', size, maxBytes: max });
}
