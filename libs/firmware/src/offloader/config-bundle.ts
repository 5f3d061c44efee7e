import { readdir, readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, posix, relative, sep } from 'node:path';
import { isMap, isPair, isScalar, parseDocument, visit, type Node } from 'yaml';
import { KilnError } from '@kiln/core';

export interface ConfigFile {
  /** Path relative to the config dir, with `/` separators. */
  name: string;
  data: Buffer;
}

/** More than this many files in one configuration's bundle is refused (a loop of includes, or a mistake). */
const MAX_FILES = 500;
/** Nor more bytes than a receiver accepts by default (`receiver.maxBundleBytes`): refused here, naming the configuration. */
const MAX_BYTES = 32 * 1024 * 1024;

/** A file (or, for a local external component, a directory) the configuration names, and how it resolves. */
interface Reference {
  ref: string;
  /** `!include` targets resolve against the including file's dir; what components read, against the config dir. */
  from: 'including-file' | 'config-dir';
  /** A local `path:` may name a directory (external components): all its files are sent. */
  mayBeDir: boolean;
  /** `source: <string>` is a local dir only when one exists (else esphome reads it as a git shorthand). */
  onlyIfDir?: boolean;
}

/**
 * The files a remote compile of `configuration` needs from the config dir: the YAML itself, every
 * file it `!include`s (recursively, relative to the including file, `!include {file: …}` too), the
 * files listed under `esphome: includes:`, the local files components read (`file:` values such as
 * fonts, images, animations and audio; `{type: local, path: …}` maps, which for `external_components`
 * name a directory whose files are all sent), and `secrets.yaml` when present. A reference that
 * leaves the config dir is refused, naming it. Order is stable, so an unchanged configuration
 * packs to the same bundle (and is not sent again).
 */
export async function configBundleFiles(configDir: string, configuration: string): Promise<ConfigFile[]> {
  const files = new Map<string, Buffer>();
  let bytes = 0;
  const add = (name: string, data: Buffer): void => {
    if (files.size >= MAX_FILES) throw new KilnError('failed_precondition', `${configuration} references more than ${MAX_FILES} files`, { configuration });
    bytes += data.length;
    if (bytes > MAX_BYTES) throw new KilnError('failed_precondition', `${configuration}: the files it references exceed ${MAX_BYTES} bytes (at ${name})`, { configuration, file: name });
    files.set(name, data);
  };
  const pending: { name: string; mayBeDir: boolean; onlyIfDir?: boolean }[] = [{ name: configuration, mayBeDir: false }];
  while (pending.length > 0) {
    const { name, mayBeDir, onlyIfDir } = pending.shift()!;
    if (files.has(name)) continue;
    const path = join(configDir, ...name.split('/'));
    if (mayBeDir && (await stat(path).catch(() => undefined))?.isDirectory()) {
      for (const file of await filesUnder(path, name, configuration)) if (!files.has(file)) add(file, await readConfigFile(configDir, file, configuration));
      continue;
    }
    if (onlyIfDir) continue;
    const data = await readConfigFile(configDir, name, configuration);
    add(name, data);
    if (!/\.ya?ml$/.test(name)) continue;
    for (const ref of references(data.toString('utf8'), name === configuration)) {
      const resolved = { name: inside(ref.from === 'including-file' ? posix.dirname(name) : '.', ref.ref, configuration), mayBeDir: ref.mayBeDir };
      pending.push(ref.onlyIfDir ? { ...resolved, onlyIfDir: true } : resolved);
    }
  }
  const secrets = await readFile(join(configDir, 'secrets.yaml')).catch(() => undefined);
  if (secrets && !files.has('secrets.yaml')) add('secrets.yaml', secrets);
  return [...files].map(([name, data]) => ({ name, data }));
}

function readConfigFile(configDir: string, name: string, configuration: string): Promise<Buffer> {
  return readFile(join(configDir, ...name.split('/'))).catch((err: NodeJS.ErrnoException) => {
    throw new KilnError(err.code === 'ENOENT' ? 'not_found' : 'internal_error', `${configuration}: cannot read ${name} (${err.code ?? err.message})`, { configuration, file: name });
  });
}

/** Every file under a local external component dir, as config-dir relative names, sorted (bytecode caches left out). */
async function filesUnder(dir: string, name: string, configuration: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    throw new KilnError('internal_error', `${configuration}: cannot list ${name} (${err.code ?? err.message})`, { configuration, file: name });
  });
  return entries
    .filter((e) => e.isFile())
    .map((e) => posix.join(name, relative(dir, join(e.parentPath, e.name)).split(sep).join('/')))
    .filter((file) => !file.split('/').includes('__pycache__') && !file.endsWith('.pyc'))
    .sort();
}

/** `file: mdi:home`, `file: gfonts://Roboto`, `file: https://…`: fetched by the compile, not read from the config dir. */
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]+:/;

/** A value the bundle can resolve: a plain relative or absolute path, not a URL/scheme nor a `${substitution}`. */
function localPath(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && !SCHEME.test(value) && !value.includes('${');
}

/**
 * What a YAML text references: `!include` targets; the `esphome: includes:` list (device file);
 * `file:` scalars and `{type: local, path: …}` maps anywhere (component files, local external components).
 */
function references(text: string, isDevice: boolean): Reference[] {
  const doc = parseDocument(text);
  const refs: Reference[] = [];
  visit(doc, {
    Node(_, node) {
      if (node.tag === '!include') {
        const target = isScalar(node) ? node.value : isMap(node) ? node.get('file') : undefined;
        if (typeof target === 'string') refs.push({ ref: target, from: 'including-file', mayBeDir: false });
        // The include's own `file:`/`vars:` are not component settings.
        return visit.SKIP;
      }
      // A remote (git) package's `file:`/`files:` name files of that repository, not of the config dir.
      if (isMap(node) && node.has('url')) return visit.SKIP;
      if (isMap(node) && scalarValue(node.get('type', true)) === 'local') {
        const path = scalarValue(node.get('path', true));
        if (localPath(path)) refs.push({ ref: path, from: 'config-dir', mayBeDir: true });
      }
      return undefined;
    },
    Pair(_, pair) {
      if (isPair(pair) && isScalar(pair.key) && pair.key.value === 'file' && isScalar(pair.value) && !pair.value.tag && localPath(pair.value.value)) {
        refs.push({ ref: pair.value.value, from: 'config-dir', mayBeDir: false });
      }
      // `external_components: - source: my_components` (a string; not `github://…`, which localPath leaves out).
      if (isPair(pair) && isScalar(pair.key) && pair.key.value === 'source' && isScalar(pair.value) && localPath(pair.value.value)) {
        refs.push({ ref: pair.value.value, from: 'config-dir', mayBeDir: true, onlyIfDir: true });
      }
    },
  });
  if (isDevice) {
    const includes = doc.getIn(['esphome', 'includes']) as unknown;
    const list = includes && typeof includes === 'object' && 'items' in includes ? (includes as { items: unknown[] }).items : [];
    for (const item of list) if (isScalar(item) && typeof item.value === 'string' && !item.value.endsWith('/')) refs.push({ ref: item.value, from: 'including-file', mayBeDir: false });
  }
  return refs;
}

function scalarValue(node: unknown): unknown {
  return isScalar(node as Node) ? (node as { value: unknown }).value : undefined;
}

/** A reference as a config-dir relative name; one that is absolute or climbs out is refused. */
function inside(fromDir: string, ref: string, configuration: string): string {
  const joined = posix.normalize(posix.join(fromDir, ref.replace(/\\/g, '/')));
  if (isAbsolute(ref) || posix.isAbsolute(joined) || joined === '..' || joined.startsWith('../')) {
    throw new KilnError('failed_precondition', `${configuration} references ${JSON.stringify(ref)} outside the config dir: it cannot be sent to a receiver`, { configuration, file: ref });
  }
  return joined;
}
