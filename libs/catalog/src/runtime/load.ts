import { createHash } from 'node:crypto';
import { readFile, readlink, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { KilnError } from '@kiln/core';
import {
  AUTOMATION_KINDS,
  bodyRelPath,
  CATALOG_FORMAT,
  CATALOG_SCHEMA_VERSION,
  indexFile,
  MANIFEST_FILE,
  META_FILE,
  type AutomationKind,
  type AutomationSlim,
  type BoardSlim,
  type CatalogMeta,
  type FeaturedRegistry,
  type ComponentSlim,
  type IndexHeader,
  type Manifest,
  type Section,
} from '../format/index.js';
import { Interner } from './intern.js';

/** The name of the symlink an import swaps atomically to the newest complete tree. */
export const CURRENT_LINK = 'current';

/** Entries of one section in index order, with their ids and expected body digests. */
export class EntryTable<E extends { id: string }> {
  private readonly positions = new Map<string, number>();

  constructor(
    readonly entries: readonly E[],
    /** 32 bytes per entry, in entry order: the manifest's SHA-256 of each body. */
    private readonly digests: Buffer,
    readonly relPath: (id: string) => string,
  ) {
    entries.forEach((e, i) => this.positions.set(e.id, i));
  }

  get(id: string): E | undefined {
    const i = this.positions.get(id);
    return i === undefined ? undefined : this.entries[i];
  }

  digest(id: string): Buffer | undefined {
    const i = this.positions.get(id);
    return i === undefined ? undefined : this.digests.subarray(i * 32, i * 32 + 32);
  }
}

export interface LoadedCatalog {
  root: string;
  manifestSha256: string;
  source: Record<string, string>;
  components: EntryTable<ComponentSlim>;
  boards: EntryTable<BoardSlim>;
  automations: Record<AutomationKind, EntryTable<AutomationSlim>>;
  /** Board id → ids of the components its featured components instantiate (index only). */
  featured: ReadonlyMap<string, readonly string[]>;
  meta: CatalogMeta;
}

/*
 * Body path functions live at module level: a closure created inside loadCatalog would keep that
 * call's whole scope (the parsed manifest, the interning pool) alive for as long as the catalog.
 */
const componentPath = (id: string) => bodyRelPath('components', id);
const boardPath = (id: string) => bodyRelPath('boards', id);
const automationPath = Object.fromEntries(AUTOMATION_KINDS.map((kind) => [kind, (id: string) => bodyRelPath('automations', id, kind)])) as Record<
  AutomationKind,
  (id: string) => string
>;

/** The tree to load under a catalog directory: what `current` points at, or the directory itself (the shipped catalog). */
export async function resolveCatalogRoot(dir: string): Promise<string> {
  const link = join(dir, CURRENT_LINK);
  const target = await readlink(link).catch(() => undefined);
  return target === undefined ? resolve(dir) : resolve(dir, target);
}

/**
 * Load the slim indexes eagerly and check the tree against its manifest: the indexes must name the
 * manifest's hash, list exactly its files, and every body must have the listed size (contents are
 * checked against the SHA-256 when a body is read). Any mismatch refuses the whole catalog.
 */
export async function loadCatalog(root: string): Promise<LoadedCatalog> {
  const manifestData = await readTreeFile(root, MANIFEST_FILE);
  const manifestSha256 = createHash('sha256').update(manifestData).digest('hex');
  const manifest = parseJson<Manifest>(manifestData, root, MANIFEST_FILE);
  checkFormat(manifest, root, MANIFEST_FILE);
  const meta = parseJson<CatalogMeta>(await readTreeFile(root, META_FILE), root, META_FILE);
  checkFormat(meta, root, META_FILE);

  const intern = new Interner();
  const listed = new Set<string>();
  const table = <E extends { id: string }>(entries: E[], relPath: (id: string) => string): EntryTable<E> => {
    const digests = Buffer.alloc(entries.length * 32);
    entries.forEach((e, i) => {
      const rel = relPath(e.id);
      const file = manifest.files[rel];
      if (!file) refuse(root, `${rel} is in the index but not in the manifest`, rel);
      if (listed.has(rel)) refuse(root, `${rel} is listed twice`, rel);
      listed.add(rel);
      digests.write(file[1], i * 32, 'hex');
    });
    return new EntryTable(entries, digests, relPath);
  };

  const components = (await readIndex<ComponentSlim[]>(root, 'components', manifestSha256)).entries.map((e) => intern.component(e));
  const boardIndex = await readIndex<BoardSlim[]>(root, 'boards', manifestSha256);
  const boards = boardIndex.entries.map((e) => intern.board(e));
  const { entries: automationLists } = await readIndex<Partial<Record<AutomationKind, AutomationSlim[]>>>(root, 'automations', manifestSha256);
  // Featured ids share the component entries' id strings (interned after them).
  const featured = new Map(Object.entries(boardIndex.featured ?? {}).map(([board, ids]) => [intern.str(board), ids.map((id) => intern.str(id))]));
  const loaded: LoadedCatalog = {
    root,
    manifestSha256,
    source: meta.source ?? {},
    components: table(components, componentPath),
    boards: table(boards, boardPath),
    automations: Object.fromEntries(
      AUTOMATION_KINDS.map((kind) => [kind, table((automationLists[kind] ?? []).map((e) => intern.automation(e)), automationPath[kind])]),
    ) as Record<AutomationKind, EntryTable<AutomationSlim>>,
    featured,
    meta: { ...meta, platform_capabilities: meta.platform_capabilities ?? {}, pin_registry_modes: meta.pin_registry_modes ?? {} },
  };
  const extra = Object.keys(manifest.files).find((rel) => !listed.has(rel));
  if (extra) refuse(root, `${extra} is in the manifest but in no index`, extra);
  await checkSizes(root, manifest);
  return loaded;
}

async function readIndex<T>(root: string, section: Section, manifestSha256: string): Promise<{ entries: T; featured?: FeaturedRegistry }> {
  const file = indexFile(section);
  const doc = parseJson<{ header?: IndexHeader; entries?: T; featured_components?: FeaturedRegistry }>(await readTreeFile(root, file), root, file);
  const header = doc.header;
  checkFormat(header, root, file);
  if (header!.section !== section) refuse(root, `${file} holds section ${JSON.stringify(header!.section)}`, file);
  if (header!.manifest_sha256 !== manifestSha256) {
    refuse(root, `${file} was written for manifest ${String(header!.manifest_sha256).slice(0, 12)}…, but manifest.json is ${manifestSha256.slice(0, 12)}… (a torn or mixed import)`, file);
  }
  const entries = doc.entries;
  const count = Array.isArray(entries) ? entries.length : Object.values(entries ?? {}).reduce((n: number, l) => n + (Array.isArray(l) ? l.length : 0), 0);
  if (count !== header!.entry_count) refuse(root, `${file} has ${count} entries, its header says ${header!.entry_count}`, file);
  return { entries: entries as T, ...(doc.featured_components ? { featured: doc.featured_components } : {}) };
}

/** Every body exists with the manifest's size: a cheap check (stat only) of the whole tree at load. */
async function checkSizes(root: string, manifest: Manifest): Promise<void> {
  const items = Object.entries(manifest.files);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const [rel, [size]] = items[next++]!;
      const actual = await stat(join(root, rel)).then(
        (s) => s.size,
        () => undefined,
      );
      if (actual === undefined) refuse(root, `${rel} is missing`, rel);
      if (actual !== size) refuse(root, `${rel} is ${actual} bytes, the manifest says ${size}`, rel);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

function checkFormat(doc: { format?: unknown; schema_version?: unknown } | undefined, root: string, file: string): void {
  if (!doc || doc.format !== CATALOG_FORMAT) refuse(root, `${file} is not a ${CATALOG_FORMAT} file`, file);
  if (doc.schema_version !== CATALOG_SCHEMA_VERSION) {
    refuse(root, `${file} has schema version ${JSON.stringify(doc.schema_version)}; this Kiln reads version ${CATALOG_SCHEMA_VERSION} (re-run kiln catalog import)`, file);
  }
}

async function readTreeFile(root: string, file: string): Promise<Buffer> {
  try {
    return await readFile(join(root, file));
  } catch (err) {
    return refuse(root, `${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, file);
  }
}

function parseJson<T>(data: Buffer, root: string, file: string): T {
  try {
    return JSON.parse(data.toString('utf8')) as T;
  } catch (err) {
    return refuse(root, `${file} is not valid JSON (${(err as Error).message})`, file);
  }
}

/** The one error a broken tree gets: which catalog, what is wrong (and in which file, `rel` to the root), what to do. */
export function refuse(root: string, problem: string, rel?: string): never {
  throw new KilnError('failed_precondition', `catalog at ${root} does not match its manifest: ${problem}; re-run \`kiln catalog import\``, {
    root,
    problem,
    ...(rel === undefined ? {} : { file: join(root, rel) }),
  });
}
