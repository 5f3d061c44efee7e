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
  // Settles with the feed's error (or undefined): awaited below on every path, never left unhandled.
  const feeding = pipeline(createReadStream(archive), createGunzip(), extract).then(
    () => undefined,
    (err: unknown) => err as Error,
  );
  // Rejects when the feed fails; never settles otherwise.
  const feedFailed = feeding.then((err) => (err ? Promise.reject(err) : new Promise<never>(() => undefined)));
  feedFailed.catch(() => undefined);
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
          const out = createWriteStream(target, { flags: 'wx', mode: 0o644 });
          // An archive that breaks off mid-entry destroys the entry, and piping a destroyed tar-stream
          // entry never settles: the feed's failure ends the write instead.
          await Promise.race([pipeline(entry, out), feedFailed]).finally(() => out.destroy());
        }
      }
      if (type === 'file') files.push(name);
    }
    const failed = await feeding;
    if (failed) throw isCorruption(failed) ? unreadable(failed) : failed;
  } catch (err) {
    extract.destroy();
    const failed = await feeding;
    // Bytes that are not gzip, or not tar inside, surface in the entry loop as the very error the feed
    // failed with (a zlib or tar-stream Error): the sender's fault, not an internal one.
    throw failed !== undefined && err === failed && isCorruption(failed) ? unreadable(failed) : err;
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

/**
 * zlib's data errors (Z_*) and tar-stream's parse errors (plain Errors without a code) are about the
 * bytes; a system error (ENOENT, EIO: code E*) reading the stored file is ours and stays internal.
 */
function isCorruption(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === undefined || code.startsWith('Z_');
}

/** What was wrong with an archive that could not be read, in the sender's terms. */
function unreadable(err: Error): KilnError {
  const code = (err as NodeJS.ErrnoException).code;
  const what =
    code === 'Z_DATA_ERROR' ? 'not gzip data or corrupt compressed data' : code === 'Z_BUF_ERROR' ? 'truncated' : /tar header/i.test(err.message) ? 'gzip, but not a tar archive inside' : 'unreadable';
  return refused(`bundle is not a readable .tar.gz: ${what} (${err.message})`, { reason: err.message });
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
