import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { KilnError } from '@kiln/core';
import { openUpstreamSource, type UpstreamSource } from './sources.js';

/**
 * Upstream publishes its catalog inside its Python package: the PyPI sdist
 * (`esphome_device_builder-<version>.tar.gz`) and GitHub's source archive of a tag
 * (`device-builder-<tag>.tar.gz`) both hold it under `<top>/esphome_device_builder/definitions/`.
 */
const DEFINITIONS = ['esphome_device_builder', 'definitions'] as const;

export interface ArchiveLimits {
  /** Uncompressed bytes of the definitions taken out of the archive, all files together. */
  maxBytes: number;
  /** Files and folders taken out of the archive. */
  maxEntries: number;
}

/** Upstream's split tree is ~62 MB in ~3,100 files (plus board images); the monolithic files ~45 MB. */
export const DEFAULT_ARCHIVE_LIMITS: ArchiveLimits = { maxBytes: 512 * 1024 * 1024, maxEntries: 20_000 };

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const ZIP_MAGIC = Buffer.from('PK\x03\x04', 'latin1');

/**
 * Whether `--from` names a gzip-compressed tar (by its first bytes, or by its name so that a broken
 * one is reported as such rather than as bad JSON). A wheel or any zip is refused here: the sdist
 * carries the same definitions, and reading it needs no zip support.
 */
export async function isDefinitionsArchive(path: string): Promise<boolean> {
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) return false;
  const head = await firstBytes(path, 4);
  if (head.subarray(0, 4).equals(ZIP_MAGIC) || /\.(whl|zip)$/i.test(path)) {
    throw new KilnError(
      'invalid_args',
      `--from ${path}: a zip archive (a wheel?): pass upstream's source distribution instead, esphome_device_builder-<version>.tar.gz ` +
        `(pip download --no-deps --no-binary :all: esphome-device-builder==<version>)`,
      { path },
    );
  }
  return head.subarray(0, 2).equals(GZIP_MAGIC) || /\.(tar\.gz|tgz)$/i.test(path);
}

/**
 * Open the definitions inside an upstream .tar.gz as an import source: they are extracted below
 * `unpackDir` (which the caller removes once the import is done: bodies are read lazily), and every
 * error names the archive and the folder inside it, not the temporary copy.
 */
export async function openArchiveSource(archive: string, unpackDir: string, limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS): Promise<UpstreamSource> {
  const { dir, inside } = await extractDefinitions(archive, unpackDir, limits);
  const label = `${archive}:${inside}`;
  const renamed = (err: unknown): unknown => (err instanceof KilnError && err.message.includes(dir) ? new KilnError(err.code, err.message.replaceAll(dir, label), err.details, { cause: err }) : err);
  let source: UpstreamSource;
  try {
    source = await openUpstreamSource(dir);
  } catch (err) {
    throw renamed(err);
  }
  return {
    ...source,
    sections: source.sections.map((section) => ({
      ...section,
      origin: section.origin.replace(dir, label),
      entries: async function* () {
        try {
          yield* section.entries();
        } catch (err) {
          throw renamed(err);
        }
      },
    })),
  };
}

/**
 * Stream the archive and write the regular files and folders under
 * `<top>/esphome_device_builder/definitions/` to `<unpackDir>/definitions`, whatever `<top>` is called;
 * everything else is skipped unread. Refused, naming the archive and the entry: not gzip, truncated or
 * corrupt, an absolute or `..` entry name (anywhere in the archive), a link or device among the
 * definitions, two definitions folders, more than `limits` allow, no definitions at all.
 */
export async function extractDefinitions(archive: string, unpackDir: string, limits: ArchiveLimits): Promise<{ dir: string; inside: string }> {
  const refused = (what: string, details: Record<string, unknown> = {}): KilnError => new KilnError('invalid_args', `--from ${archive}: ${what}`, { path: archive, ...details });
  const head = await firstBytes(archive, 2);
  if (!head.equals(GZIP_MAGIC)) throw refused(`not a gzip file (starts with ${head.length === 0 ? 'nothing: it is empty' : `0x${head.toString('hex')}`}); expected a .tar.gz such as upstream's sdist`);

  const dir = join(unpackDir, 'definitions');
  const extract = tar.extract();
  const tops = new Set<string>();
  let top: string | undefined;
  let entries = 0;
  let bytes = 0;
  // Settles with the feed's error (or undefined): awaited on every path, never left unhandled.
  const feeding = pipeline(createReadStream(archive), createGunzip(), extract).then(
    () => undefined,
    (err: unknown) => err as Error,
  );
  // Rejects when the feed fails; never settles otherwise (a truncated entry never ends on its own).
  const feedFailed = feeding.then((err) => (err ? Promise.reject(err) : new Promise<never>(() => undefined)));
  feedFailed.catch(() => undefined);
  try {
    for await (const entry of extract) {
      const { name: rawName, type, size = 0 } = entry.header;
      const segments = entrySegments(rawName, refused);
      if (segments.length > 0) tops.add(segments[0]!);
      const inDefinitions = segments.length >= 3 && segments[1] === DEFINITIONS[0] && segments[2] === DEFINITIONS[1];
      if (!inDefinitions) {
        entry.resume();
        continue;
      }
      if (top !== undefined && segments[0] !== top) {
        throw refused(`two definitions folders inside (${top}/${DEFINITIONS.join('/')} and ${segments[0]}/${DEFINITIONS.join('/')})`);
      }
      top = segments[0]!;
      if (type !== 'file' && type !== 'contiguous-file' && type !== 'directory') {
        throw refused(`entry ${JSON.stringify(rawName)} is a ${type}: only regular files and folders are read`, { entry: rawName, type });
      }
      if (++entries > limits.maxEntries) throw refused(`more than ${limits.maxEntries} entries in its definitions folder`, { maxEntries: limits.maxEntries });
      bytes += size;
      if (bytes > limits.maxBytes) {
        throw refused(`its definitions exceed the size limit of ${limits.maxBytes} bytes uncompressed (at ${JSON.stringify(rawName)})`, { maxBytes: limits.maxBytes, entry: rawName });
      }
      const target = join(dir, ...segments.slice(3));
      if (type === 'directory') {
        await mkdir(target, { recursive: true });
        entry.resume();
        continue;
      }
      await mkdir(dirname(target), { recursive: true });
      // 'wx': never through anything already there (an entry given twice is refused, not merged).
      const out = createWriteStream(target, { flags: 'wx', mode: 0o644 });
      await Promise.race([pipeline(entry, out), feedFailed])
        .catch((err: unknown) => {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw refused(`entry ${JSON.stringify(rawName)} appears twice`, { entry: rawName });
          throw err;
        })
        .finally(() => out.destroy());
    }
    const failed = await feeding;
    if (failed) throw failed;
  } catch (err) {
    extract.destroy();
    const failed = await feeding;
    // A zlib or tar-stream error is about the bytes of the archive; a system error (EIO, ENOSPC) is ours.
    if (failed !== undefined && err === failed && isCorruption(failed)) throw refused(`not a readable .tar.gz: ${corruption(failed)} (${failed.message})`);
    throw err;
  }
  if (top === undefined) {
    const seen = [...tops].slice(0, 5).map((t) => `${t}/`);
    throw refused(`no ${DEFINITIONS.join('/')}/ folder inside (expected <top>/${DEFINITIONS.join('/')}/ as in upstream's sdist; top-level: ${seen.join(', ') || 'nothing'})`);
  }
  await mkdir(dir, { recursive: true });
  return { dir, inside: `${top}/${DEFINITIONS.join('/')}` };
}

/** An entry name's path segments (`./` and empty segments dropped); absolute and `..` names refused. */
function entrySegments(raw: string, refused: (what: string, details: Record<string, unknown>) => KilnError): string[] {
  const segments = raw.split('/').filter((s) => s !== '' && s !== '.');
  if (raw.startsWith('/') || /^[A-Za-z]:/.test(raw) || raw.includes('\0') || segments.some((s) => s === '..' || s.includes('\\'))) {
    throw refused(`entry ${JSON.stringify(raw)} is not a relative path inside the archive (absolute, "..", or malformed)`, { entry: raw });
  }
  return segments;
}

/** zlib's data errors (Z_*) and tar-stream's parse errors (plain Errors without a code) are about the bytes. */
function isCorruption(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === undefined || code.startsWith('Z_');
}

function corruption(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'Z_BUF_ERROR' || /unexpected end/i.test(err.message)) return 'truncated';
  if (code === 'Z_DATA_ERROR') return 'corrupt compressed data';
  return /header/i.test(err.message) ? 'gzip, but not a tar archive inside' : 'corrupt';
}

async function firstBytes(path: string, n: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(n);
    const { bytesRead } = await handle.read(buffer, 0, n, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}
