import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { refuse } from './load.js';

export interface BodyCacheLimits {
  /** Bodies kept at most. */
  maxEntries: number;
  /** Bytes of body JSON kept at most (the largest upstream body is 1.7 MB: a count bound alone is not a memory bound). */
  maxBytes: number;
}

export interface BodyCacheStats {
  hits: number;
  diskReads: number;
  entries: number;
  bytes: number;
}

/**
 * Bodies read on demand, verified against the manifest's SHA-256, kept as their JSON bytes (what
 * every caller sends on) in an LRU bounded by count AND size. Concurrent requests for the same
 * cold body share one read (lru-cache's fetch keeps the in-flight promise).
 */
export class BodyCache {
  private readonly cache: LRUCache<string, Buffer, Buffer>;
  private hits = 0;
  private diskReads = 0;

  constructor(
    private readonly root: string,
    limits: BodyCacheLimits,
  ) {
    this.cache = new LRUCache<string, Buffer, Buffer>({
      max: limits.maxEntries,
      maxSize: limits.maxBytes,
      sizeCalculation: (body) => Math.max(1, body.length),
      fetchMethod: (rel, _stale, { context: digest }) => this.readVerified(rel, digest),
    });
  }

  async get(rel: string, digest: Buffer): Promise<Buffer> {
    if (this.cache.has(rel)) this.hits++;
    const body = await this.cache.fetch(rel, { context: digest });
    // fetchMethod never resolves undefined; the type allows it for aborted fetches.
    return body!;
  }

  stats(): BodyCacheStats {
    return { hits: this.hits, diskReads: this.diskReads, entries: this.cache.size, bytes: this.cache.calculatedSize };
  }

  private async readVerified(rel: string, digest: Buffer): Promise<Buffer> {
    this.diskReads++;
    let data: Buffer;
    try {
      data = await readFile(join(this.root, rel));
    } catch (err) {
      return refuse(this.root, `${rel} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, rel);
    }
    if (!createHash('sha256').update(data).digest().equals(digest)) refuse(this.root, `${rel} does not have the content the manifest lists`, rel);
    return data;
  }
}
