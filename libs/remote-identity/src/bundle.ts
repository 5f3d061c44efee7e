import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip, gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { KilnError } from '@kiln/core';

export interface BundleLimits {
  /** Uncompressed bytes of all files together. */
  maxExtractedBytes: number;
  maxEntries: number;
}

/**
 * Walk a gzip-compressed tar bundle, refusing (with the entry named) anything that could write outside
 * the destination or blow up the disk: absolute paths, `..` segments, backslashes, NUL, links of any
 * kind, devices/FIFOs, duplicates, and more than `limits` allow. With `dest`, regular files and
 * directories are written below it as they pass; without, the bundle is only checked.
 * Returns the files' relative paths.
 */
export async function walkBundle(archive: string, limits: BundleLimits, dest?: string): Promise<string[]> {
  const root = dest === undefined ? undefined : resolve(dest);
  if (root) await mkdir(root, { recursive: true });
  const extract = tar.extract();
  const files: string[] = [];
  const seen = new Set<string>();
  let bytes = 0;
  const feeding = pipeline(createReadStream(archive), createGunzip(), extract).catch((err: Error) => {
    throw refused(`bundle is not a readable .tar.gz (${err.message})`, {});
  });
  try {
    for await (const entry of extract) {
      const { name: rawName, type, size = 0 } = entry.header;
      const name = checkEntryName(rawName);
      if (type !== 'file' && type !== 'directory') {
        throw refused(`bundle entry ${JSON.stringify(rawName)} is a ${type}: only regular files and directories are accepted`, { entry: rawName, type });
      }
      if (seen.size >= limits.maxEntries) throw refused(`bundle has more than ${limits.maxEntries} entries`, { maxEntries: limits.maxEntries });
      if (seen.has(name)) throw refused(`bundle entry ${JSON.stringify(rawName)} appears twice`, { entry: rawName });
      seen.add(name);
      bytes += size;
      if (bytes > limits.maxExtractedBytes) {
        throw refused(`bundle contents exceed ${limits.maxExtractedBytes} bytes uncompressed (at ${JSON.stringify(rawName)})`, { maxExtractedBytes: limits.maxExtractedBytes });
      }
      if (!root) {
        entry.resume();
      } else {
        const target = resolve(root, name);
        // Belt and braces: the name checks above already rule this out.
        if (!target.startsWith(root + sep)) throw refused(`bundle entry ${JSON.stringify(rawName)} resolves outside the build dir`, { entry: rawName });
        if (type === 'directory') {
          await mkdir(target, { recursive: true });
          entry.resume();
        } else {
          await mkdir(dirname(target), { recursive: true });
          // 'wx': never through an existing file (or anything else already there).
          await pipeline(entry, createWriteStream(target, { flags: 'wx', mode: 0o644 }));
        }
      }
      if (type === 'file') files.push(name);
    }
    await feeding;
  } catch (err) {
    extract.destroy();
    await feeding.catch(() => undefined);
    throw err;
  }
  return files;
}

function checkEntryName(raw: string): string {
  const name = raw.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
  const bad =
    name === '' ||
    name.includes('\0') ||
    name.includes('\\') ||
    name.startsWith('/') ||
    /^[A-Za-z]:/.test(name) ||
    name.split('/').some((segment) => segment === '..' || segment === '.' || segment === '');
  if (bad) throw refused(`bundle entry ${JSON.stringify(raw)} is not a relative path inside the bundle (absolute, "..", or malformed)`, { entry: raw });
  return name;
}

function refused(message: string, details: Record<string, unknown>): KilnError {
  return new KilnError('invalid_args', message, { field: 'bundle', ...details });
}

export interface BundleEntry {
  name: string;
  data?: string | Uint8Array;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  linkname?: string;
}

/**
 * A bundle from entries (files in the order given). Deterministic for the same entries (fixed mtime),
 * so an unchanged configuration hashes the same and is not re-sent.
 */
export async function packBundle(entries: readonly BundleEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    const header = { name: entry.name, type, mtime: new Date(0), mode: type === 'directory' ? 0o755 : 0o644, ...(entry.linkname ? { linkname: entry.linkname } : {}) };
    await new Promise<void>((done, fail) => {
      const body = type === 'file' ? Buffer.from(entry.data ?? '') : undefined;
      const callback = (err?: Error | null): void => (err ? fail(err) : done());
      if (body === undefined) pack.entry(header, callback);
      else pack.entry({ ...header, size: body.length }, body, callback);
    });
  }
  pack.finalize();
  await collected;
  return gzipSync(Buffer.concat(chunks), { level: 9 });
}
