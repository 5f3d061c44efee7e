import { readdir, readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, posix, relative, sep } from 'node:path';
import { isMap, isNode, isScalar, isSeq, parseDocument, type Document, type Node, type YAMLMap } from 'yaml';
import { KilnError, yamlLimitExceeded } from '@kiln/core';
import { SubstitutionScope, type SubstitutionValue } from './substitutions.js';

export interface ConfigFile {
  /** Path relative to the config dir, with `/` separators. */
  name: string;
  data: Buffer;
}

/** More than this many files in one configuration's bundle is refused (a loop of includes, or a mistake). */
const MAX_FILES = 500;
/** Nor more bytes than a receiver accepts by default (`receiver.maxBundleBytes`): refused here, naming the configuration. */
const MAX_BYTES = 32 * 1024 * 1024;

/** How a reference resolves: `!include` targets against the including file's dir; what components read, against the config dir. */
type Base = 'including-file' | 'config-dir';

/** A file (or, for a local external component, a directory) the configuration names, resolved. */
interface Reference {
  name: string;
  /** A YAML file to read for references: an `!include` (or the device), read with these substitutions in scope. */
  yaml?: { scope: SubstitutionScope; vars: VarsLevel };
  /** A local `path:` may name a directory (external components): all its files are sent. */
  mayBeDir: boolean;
  /** `source: <string>` is a local dir only when one exists (else esphome reads it as a git shorthand). */
  onlyIfDir?: boolean;
}

/** A reference left out of the bundle because a substitution in it does not resolve here. */
export interface UnresolvedReference {
  /** The config-dir relative file it is written in. */
  file: string;
  /** As written, e.g. `${font_dir}/Roboto.ttf`. */
  ref: string;
  reason: string;
}

export interface ConfigBundleFiles {
  files: ConfigFile[];
  /**
   * References whose substitutions do not resolve here (undefined, a cycle, a `!secret`, a Jinja
   * expression): not sent, and the caller says so in the job's log. Not an error: esphome itself
   * only warns about an undefined substitution, and such a value may name no local file at all
   * (`mdi:…`, a URL) once the receiver's esphome evaluates it; if it does name one, that compile
   * fails naming the file, after this warning. (esphome keeps an undefined `$name` as literal
   * text; a file whose name really holds `$name` is therefore not sent either.)
   */
  unresolved: UnresolvedReference[];
}

/** Visits of one file in different `vars:` scopes (each may name other files) are bounded too. */
const MAX_VISITS = 5 * MAX_FILES;
/** `!include` scopes nested deeper than this are a loop (esphome would recurse without end). */
const MAX_SCOPE_DEPTH = 32;

/**
 * The files a remote compile of `configuration` needs from the config dir: the YAML itself, every
 * file it `!include`s (recursively, relative to the including file, `!include {file: …}` too), the
 * files (and directories) listed under `esphome: includes:` of the device or a package, the local files components read (`file:` values such as
 * fonts, images, animations and audio; `{type: local, path: …}` maps, which for `external_components`
 * name a directory whose files are all sent), and `secrets.yaml` when present. Substitutions in
 * those references resolve as esphome resolves them (`substitutions.ts`): the device's
 * `substitutions:` over those of its packages, and `!include` `vars:` within the included file.
 * A reference that leaves the config dir, once substituted, is refused, naming it. Order is
 * stable, so an unchanged configuration packs to the same bundle (and is not sent again).
 */
export async function configBundleFiles(configDir: string, configuration: string): Promise<ConfigBundleFiles> {
  const yaml = new YamlFiles(configDir, configuration);
  const files = new Map<string, Buffer>();
  let bytes = 0;
  const add = (name: string, data: Buffer): void => {
    if (files.has(name)) return;
    if (files.size >= MAX_FILES) throw new KilnError('failed_precondition', `${configuration} references more than ${MAX_FILES} files`, { configuration });
    bytes += data.length;
    if (bytes > MAX_BYTES) throw new KilnError('failed_precondition', `${configuration}: the files it references exceed ${MAX_BYTES} bytes (at ${name})`, { configuration, file: name });
    files.set(name, data);
  };
  const unresolved = new Map<string, UnresolvedReference>();
  const global = await globalSubstitutions(yaml, configuration);
  const visited = new Set<string>();
  const pending: Reference[] = [{ name: configuration, yaml: { scope: global, vars: [] }, mayBeDir: false }];
  while (pending.length > 0) {
    const { name, yaml: include, mayBeDir, onlyIfDir } = pending.shift()!;
    if (!include || !/\.ya?ml$/.test(name)) {
      if (files.has(name)) continue;
      const path = join(configDir, ...name.split('/'));
      if (mayBeDir && (await stat(path).catch(() => undefined))?.isDirectory()) {
        for (const file of await filesUnder(path, name, configuration)) if (!files.has(file)) add(file, await readConfigFile(configDir, file, configuration));
        continue;
      }
      if (onlyIfDir) continue;
      add(name, await yaml.data(name));
      continue;
    }
    add(name, await yaml.data(name));
    const doc = await yaml.doc(name);
    // esphome: an included file's top-level `defaults:` are vars the include's `vars:` override.
    const defaults = name === configuration || !isMap(doc.contents) ? [] : substitutionEntries(doc.contents.get('defaults', true), yaml.text(name));
    const scope = defaults.length + include.vars.length > 0 ? include.scope.child([...defaults, ...include.vars]) : include.scope;
    if (scope.depth > MAX_SCOPE_DEPTH) throw new KilnError('failed_precondition', `${configuration}: !include with vars nested deeper than ${MAX_SCOPE_DEPTH} (at ${name}): a loop?`, { configuration, file: name });
    const visit = `${name}\n${scope.key}`;
    if (visited.has(visit)) continue;
    if (visited.size >= MAX_VISITS) throw new KilnError('failed_precondition', `${configuration}: more than ${MAX_VISITS} !include visits (includes with vars multiply)`, { configuration, file: name });
    visited.add(visit);
    const found = references(doc, yaml.text(name));
    for (const ref of found) {
      // esphome loads a `<<:` include while parsing, before substitutions: it refuses one whose path has any.
      const resolved = ref.mergeKey && /\$|<%/.test(ref.ref) ? { ok: false as const, reason: 'esphome does not substitute the path of an !include under a `<<:` merge key' } : scope.expand(ref.ref);
      if (!resolved.ok) {
        const entry = { file: name, ref: ref.ref, reason: resolved.reason };
        unresolved.set(JSON.stringify(entry), entry);
        continue;
      }
      if (!ref.include && !localPath(resolved.value)) continue;
      const target = inside(ref.from === 'including-file' ? posix.dirname(name) : '.', resolved.value, configuration, ref.ref);
      pending.push({ name: target, ...(ref.include ? { yaml: { scope, vars: ref.include.vars } } : {}), mayBeDir: ref.mayBeDir, ...(ref.onlyIfDir ? { onlyIfDir: true } : {}) });
    }
  }
  const secrets = await readFile(join(configDir, 'secrets.yaml')).catch(() => undefined);
  if (secrets) add('secrets.yaml', secrets);
  return { files: [...files].map(([name, data]) => ({ name, data })), unresolved: [...unresolved.values()] };
}

/**
 * The substitutions in scope everywhere: the device's `substitutions:` (an `!include`d file of
 * them too) over those of its packages, recursively, as esphome's packages pass merges them
 * (packages last to first, a package before the packages it includes; remote `url:` packages
 * are not fetched here). A package `!include` path resolves with the substitutions gathered so far
 * (the device's, and those of packages after it); one that does not resolve contributes nothing
 * here, and the main walk reports it.
 */
async function globalSubstitutions(yaml: YamlFiles, configuration: string): Promise<SubstitutionScope> {
  const merged = new Map<string, SubstitutionValue>();
  const seen = new Set<string>();
  /** `levels`: the `vars:` of the `!include`s that led to `config`, outermost first. */
  const gather = async (config: YAMLMap, file: string, levels: VarsLevel[]): Promise<void> => {
    // `substitutions: !include subs.yaml`, `packages: !include packages.yaml`: the map (or list) is that file.
    const { node: subs, file: subsFile } = await includedValue(config.get('substitutions', true), file, yaml, configuration);
    for (const [key, value] of substitutionEntries(subs, yaml.text(subsFile))) if (!merged.has(key)) merged.set(key, value);
    const { node: packages, file: packagesFile } = await includedValue(config.get('packages', true), file, yaml, configuration);
    const items = isMap(packages) ? packages.items.map((p) => p.value) : isSeq(packages) ? packages.items : [];
    for (const item of [...items].reverse()) {
      if (isMap(item) && !item.tag) {
        if (!item.has('url')) await gather(item, packagesFile, levels);
        continue;
      }
      if (!isNode(item) || item.tag !== '!include') continue;
      const { target, vars } = includeOf(item, yaml.text(packagesFile));
      if (target === undefined) continue;
      const path = levels.reduce((scope, level) => scope.child(level), new SubstitutionScope(merged)).expand(target);
      if (!path.ok) continue;
      const name = inside(posix.dirname(packagesFile), path.value, configuration, target);
      const inner = [...levels, vars];
      const visit = `${name}\n${JSON.stringify(inner)}`;
      if (seen.has(visit) || inner.length > MAX_SCOPE_DEPTH) continue;
      if (seen.size >= MAX_VISITS) throw new KilnError('failed_precondition', `${configuration}: more than ${MAX_VISITS} package includes (a loop?)`, { configuration, file: name });
      seen.add(visit);
      const doc = await yaml.doc(name);
      if (isMap(doc.contents)) await gather(doc.contents, name, inner);
    }
  };
  const device = (await yaml.doc(configuration)).contents;
  if (isMap(device)) await gather(device, configuration, []);
  return new SubstitutionScope(merged);
}

type VarsLevel = (readonly [string, SubstitutionValue])[];

/** A value written as `!include file.yaml` (no substitution in the path): that file's contents, and its name; any other value as is. */
async function includedValue(node: unknown, file: string, yaml: YamlFiles, configuration: string): Promise<{ node: unknown; file: string }> {
  if (!isScalar(node) || node.tag !== '!include' || typeof node.value !== 'string' || node.value.includes('$')) return { node, file };
  const included = inside(posix.dirname(file), node.value, configuration, node.value);
  return { node: (await yaml.doc(included)).contents, file: included };
}

/** The device YAML and its includes, read and parsed once. */
class YamlFiles {
  private readonly read = new Map<string, Buffer>();
  private readonly parsed = new Map<string, Document.Parsed>();

  constructor(
    private readonly configDir: string,
    private readonly configuration: string,
  ) {}

  async data(name: string): Promise<Buffer> {
    let data = this.read.get(name);
    if (!data) {
      data = await readConfigFile(this.configDir, name, this.configuration);
      this.read.set(name, data);
    }
    return data;
  }

  /** Only after `data(name)` or `doc(name)`. */
  text(name: string): string {
    return this.read.get(name)!.toString('utf8');
  }

  async doc(name: string): Promise<Document.Parsed> {
    let doc = this.parsed.get(name);
    if (!doc) {
      const text = (await this.data(name)).toString('utf8');
      // Bounded before parsing: a config file nested 100,000 levels deep is refused, not parsed for seconds into gigabytes.
      const refused = yamlLimitExceeded(text);
      if (refused) throw new KilnError('failed_precondition', `${this.configuration}: ${name} ${refused}`, { configuration: this.configuration, file: name });
      doc = parseDocument(text);
      this.parsed.set(name, doc);
    }
    return doc;
  }
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

/** A value that names a local file once substituted: not empty, not a URL/scheme (`mdi:`, `gfonts://`, `https://`). */
function localPath(value: string): boolean {
  return value.length > 0 && !SCHEME.test(value);
}

/** A reference as written in one YAML file, before substitution. */
interface Written {
  ref: string;
  from: Base;
  mayBeDir: boolean;
  onlyIfDir?: boolean;
  /** For an `!include`: its `vars:` (in scope inside the included file). */
  include?: { vars: VarsLevel };
  /** An `!include` under `<<:`, whose path esphome does not substitute. */
  mergeKey?: boolean;
}

/**
 * What a YAML text references, in document order: `!include` targets (with their `vars:`); the
 * `esphome: includes:` list (files or directories); `file:` scalars and `{type: local, path: …}` maps
 * anywhere (component files, local external components); string `source:` values.
 */
function references(doc: Document.Parsed, text: string): Written[] {
  const refs: Written[] = [];
  const local = (node: unknown, written: Omit<Written, 'ref'>): void => {
    if (!isScalar(node) || node.tag || typeof node.value !== 'string' || !localPath(node.value)) return;
    refs.push({ ref: node.value, ...written });
  };
  const walk = (node: unknown, mergeKey: boolean): void => {
    if (!isNode(node)) return;
    if (node.tag === '!include') {
      const { target, vars } = includeOf(node, text);
      // The include's own `file:`/`vars:` are not component settings.
      if (target !== undefined) refs.push({ ref: target, from: 'including-file', mayBeDir: false, include: { vars }, ...(mergeKey ? { mergeKey } : {}) });
      return;
    }
    if (isSeq(node)) {
      for (const item of node.items) walk(item, mergeKey);
      return;
    }
    if (!isMap(node)) return;
    // A remote (git) package's `file:`/`files:` name files of that repository, not of the config dir.
    if (node.has('url')) return;
    if (scalarValue(node.get('type', true)) === 'local') local(node.get('path', true), { from: 'config-dir', mayBeDir: true });
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? pair.key.value : undefined;
      if (key === 'file') local(pair.value, { from: 'config-dir', mayBeDir: false });
      // `external_components: - source: my_components` (a string; not `github://…`, which localPath leaves out).
      if (key === 'source') local(pair.value, { from: 'config-dir', mayBeDir: true, onlyIfDir: true });
      walk(pair.value, key === '<<');
    }
  };
  walk(doc.contents, false);
  // esphome merges packages before it reads `esphome: includes:`, so a package's list counts too; each
  // entry is relative to the device's dir (CORE.relative_config_path) and may name a directory, whose
  // files are all copied into the build.
  const includes = doc.getIn(['esphome', 'includes'], true);
  for (const item of isSeq(includes) ? includes.items : []) local(item, { from: 'config-dir', mayBeDir: true });
  return refs;
}

/** `!include path` or `!include {file: path, vars: {…}}`. */
function includeOf(node: Node, text: string): { target: string | undefined; vars: VarsLevel } {
  if (isScalar(node)) return { target: typeof node.value === 'string' ? node.value : undefined, vars: [] };
  if (!isMap(node)) return { target: undefined, vars: [] };
  const file = scalarValue(node.get('file', true));
  return { target: typeof file === 'string' ? file : undefined, vars: substitutionEntries(node.get('vars', true), text) };
}

/**
 * The entries of a `substitutions:`/`vars:`/`defaults:` map, as esphome keys them (a leading `$`
 * dropped). Numbers and booleans read as written; `!secret` values are kept as such (a reference
 * through one is reported, not resolved).
 */
function substitutionEntries(node: unknown, text: string): VarsLevel {
  if (!isMap(node)) return [];
  const entries: VarsLevel = [];
  for (const pair of node.items) {
    const key = scalarValue(pair.key);
    if (typeof key !== 'string' && typeof key !== 'number') continue;
    const name = String(key).replace(/^\$/, '');
    entries.push([name, substitutionValue(pair.value, text)]);
  }
  return entries;
}

function substitutionValue(node: unknown, text: string): SubstitutionValue {
  if (!isScalar(node)) return { kind: 'other', what: isMap(node) ? 'a map' : isSeq(node) ? 'a list' : 'empty' };
  if (node.tag === '!secret') return { kind: 'secret', name: String(node.value) };
  if (node.tag) return { kind: 'other', what: `tagged ${node.tag}` };
  if (typeof node.value === 'string') return { kind: 'text', text: node.value };
  if (node.value === null) return { kind: 'other', what: 'empty' };
  // `version: 1.10` is the text 1.10 to esphome, not the number 1.1.
  return { kind: 'text', text: node.range ? text.slice(node.range[0], node.range[1]) : String(node.value) };
}

function scalarValue(node: unknown): unknown {
  return isScalar(node) ? node.value : undefined;
}

/**
 * A reference as a config-dir relative name; one that is absolute or climbs out is refused, naming
 * it as written and, when substitutions made it, what it resolved to.
 */
function inside(fromDir: string, ref: string, configuration: string, written: string): string {
  const joined = posix.normalize(posix.join(fromDir, ref.replace(/\\/g, '/')));
  if (isAbsolute(ref) || posix.isAbsolute(joined) || joined === '..' || joined.startsWith('../')) {
    const shown = written === ref ? JSON.stringify(ref) : `${JSON.stringify(written)} (${JSON.stringify(ref)} once substituted)`;
    throw new KilnError('failed_precondition', `${configuration} references ${shown} outside the config dir: it cannot be sent to a receiver`, {
      configuration,
      file: written,
      ...(written === ref ? {} : { resolved: ref }),
    });
  }
  return joined;
}
