import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CURRENT_LINK, importCatalog, loadCatalog, resolveCatalogRoot } from '../src/index.js';
import { EMBEDDED_SOURCE, tempDir, writeTinySplitTree, type TempDir } from './fixtures.js';

interface Entry {
  name: string;
  data?: string;
  type?: 'file' | 'directory' | 'symlink';
  linkname?: string;
}

/** A .tar.gz of exactly these entries, names unchecked (a hostile archive is made the same way). */
async function tarGz(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  for (const { name, data, type = 'file', linkname } of entries) {
    const body = type === 'file' ? Buffer.from(data ?? '') : undefined;
    await new Promise<void>((done, fail) => {
      const header = { name, type, mode: type === 'directory' ? 0o755 : 0o644, ...(linkname ? { linkname } : {}), ...(body ? { size: body.length } : {}) };
      const callback = (err?: Error | null): void => (err ? fail(err) : done());
      if (body) pack.entry(header, body, callback);
      else pack.entry(header, callback);
    });
  }
  pack.finalize();
  await collected;
  return gzipSync(Buffer.concat(chunks));
}

/** Every file below `dir` as an entry under `prefix`. */
async function entriesOf(dir: string, prefix: string): Promise<Entry[]> {
  const names = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((d) => d.isFile());
  return Promise.all(names.map(async (d) => ({ name: `${prefix}/${relative(dir, join(d.parentPath, d.name))}`, data: await readFile(join(d.parentPath, d.name), 'utf8') })));
}

const TOP = 'esphome_device_builder-1.0.0';
const DEFS = `${TOP}/esphome_device_builder/definitions`;

let tmp: TempDir;
let tiny: Entry[];
beforeEach(async () => {
  tmp = await tempDir();
  await writeTinySplitTree(join(tmp.path, 'tiny'));
  tiny = await entriesOf(join(tmp.path, 'tiny'), DEFS);
});
afterEach(async () => {
  await tmp.dispose();
});

async function archive(name: string, entries: Entry[]): Promise<string> {
  const path = join(tmp.path, name);
  await writeFile(path, await tarGz(entries));
  return path;
}

async function currentManifest(catalogDir: string): Promise<string> {
  return (await loadCatalog(await resolveCatalogRoot(catalogDir))).manifestSha256;
}

describe('import from an upstream .tar.gz', () => {
  it('takes the definitions folder whatever the top folder is called, skipping everything else (links too)', async () => {
    const path = await archive('github.tar.gz', [
      { name: 'device-builder-2026.7.0/README.md', data: '# device builder' },
      // GitHub archives keep a repository's symlinks: outside the definitions they are never read.
      { name: 'device-builder-2026.7.0/CLAUDE.md', type: 'symlink', linkname: '/etc/passwd' },
      ...tiny.map((e) => ({ ...e, name: e.name.replace(TOP, 'device-builder-2026.7.0') })),
    ]);
    const catalogDir = join(tmp.path, 'catalog');
    const result = await importCatalog(catalogDir, [path]);
    expect(result.counts).toEqual({ components: 3, automations: 5, boards: 2 });
    expect((await readdir(catalogDir)).sort()).toEqual([CURRENT_LINK, expect.stringMatching(/^tree-/)]);
  });

  it('an error in the definitions names the archive and the file inside it, not the unpacked copy', async () => {
    const broken = tiny.map((e) => (e.name.endsWith('/components.index.json') ? { ...e, data: e.data!.replace('"category":"sensor"', '"category":42') } : e));
    const path = await archive('broken.tar.gz', broken);
    await expect(importCatalog(join(tmp.path, 'catalog'), [path])).rejects.toThrow(
      new RegExp(`^${path.replaceAll('.', '\\.')}:${DEFS}/components\\.index\\.json: components\\[1\\] \\("sensor\\.dht"\\): category: .*got 42`),
    );
    // A body read lazily, while the tree is written, is named the same way.
    const bodyless = await archive('bodyless.tar.gz', tiny.filter((e) => !e.name.endsWith('/components/output.ledc.json')));
    await expect(importCatalog(join(tmp.path, 'catalog'), [bodyless])).rejects.toThrow(
      new RegExp(`${bodyless.replaceAll('.', '\\.')}:${DEFS}/components\\.index\\.json: components\\[2\\] \\("output\\.ledc"\\): its body ${bodyless.replaceAll('.', '\\.')}:${DEFS}/components/output\\.ledc\\.json is missing`),
    );
  });

  const refusals: [string, () => Promise<Entry[]>, RegExp][] = [
    ['an absolute entry name', async () => [...tiny, { name: '/etc/cron.d/evil', data: '' }], /entry "\/etc\/cron\.d\/evil" is not a relative path inside the archive/],
    ['a symlink among the definitions', async () => [...tiny, { name: `${DEFS}/components/x.json`, type: 'symlink', linkname: '/etc/passwd' }], /entry ".*\/definitions\/components\/x\.json" is a symlink: only regular files and folders are read/],
    ['an entry given twice', async () => [...tiny, tiny[0]!], /entry ".*\/definitions\/.*" appears twice/],
    [
      'two definitions folders',
      async () => [...tiny, { name: 'other-1.0/esphome_device_builder/definitions/boards.json', data: '{}' }],
      /two definitions folders inside \(esphome_device_builder-1\.0\.0\/esphome_device_builder\/definitions and other-1\.0\/esphome_device_builder\/definitions\)/,
    ],
  ];
  for (const [name, entries, message] of refusals) {
    it(`refuses ${name}, and the previous catalog stays with nothing unpacked beside it`, async () => {
      const catalogDir = join(tmp.path, 'catalog');
      await importCatalog(catalogDir, [EMBEDDED_SOURCE]);
      const before = await currentManifest(catalogDir);
      const path = await archive('bad.tar.gz', await entries());
      await expect(importCatalog(catalogDir, [path])).rejects.toMatchObject({ code: 'invalid_args', message: expect.stringMatching(message) });
      expect(await currentManifest(catalogDir)).toBe(before);
      expect((await readdir(catalogDir)).filter((n) => n !== CURRENT_LINK)).toHaveLength(1);
      expect(existsSync('/etc/cron.d/evil')).toBe(false);
    });
  }

  it('refuses definitions over the size or entry limit', async () => {
    const path = await archive('tiny.tar.gz', tiny);
    const bytes = tiny.reduce((n, e) => n + Buffer.byteLength(e.data ?? ''), 0);
    await expect(importCatalog(join(tmp.path, 'c1'), [path], undefined, { maxBytes: bytes - 1, maxEntries: 1000 })).rejects.toThrow(
      new RegExp(`tiny\\.tar\\.gz: its definitions exceed the size limit of ${bytes - 1} bytes uncompressed`),
    );
    await expect(importCatalog(join(tmp.path, 'c2'), [path], undefined, { maxBytes: 1e9, maxEntries: tiny.length - 1 })).rejects.toThrow(
      new RegExp(`tiny\\.tar\\.gz: more than ${tiny.length - 1} entries in its definitions folder`),
    );
    expect(await readdir(join(tmp.path, 'c1'))).toEqual([]);
    // At the limits exactly, it imports.
    await expect(importCatalog(join(tmp.path, 'c3'), [path], undefined, { maxBytes: bytes, maxEntries: tiny.length })).resolves.toMatchObject({ counts: { components: 3 } });
  });

  it('refuses gzip data that is not a tar archive, and an empty file', async () => {
    const notTar = join(tmp.path, 'not-tar.tgz');
    await writeFile(notTar, gzipSync(Buffer.alloc(2048, 'x')));
    await expect(importCatalog(join(tmp.path, 'c'), [notTar])).rejects.toThrow(/not-tar\.tgz: not a readable \.tar\.gz: gzip, but not a tar archive inside/);
    const empty = join(tmp.path, 'empty.tar.gz');
    await writeFile(empty, '');
    await expect(importCatalog(join(tmp.path, 'c'), [empty])).rejects.toThrow(/empty\.tar\.gz: not a gzip file \(starts with nothing: it is empty\)/);
  });
});
