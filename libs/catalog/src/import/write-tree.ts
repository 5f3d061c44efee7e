import { createHash } from 'node:crypto';
import { mkdir, open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { KilnError, syncDirectory } from '@kiln/core';
import {
  bodyRelPath,
  CATALOG_FORMAT,
  CATALOG_SCHEMA_VERSION,
  indexFile,
  MANIFEST_FILE,
  META_FILE,
  SECTIONS,
  type AutomationKind,
  type CatalogMeta,
  type FeaturedRegistry,
  type IndexHeader,
  type Manifest,
  type Section,
} from '../format/index.js';
import type { SectionSource, UpstreamSource } from './sources.js';

export interface ImportProgress {
  section: Section;
  done: number;
  total: number;
}

export interface TreeSummary {
  counts: Record<Section, number>;
  bodyBytes: number;
  manifestSha256: string;
}

/**
 * Write a complete catalog tree into `dir` (which must be new and empty): bodies first, then the
 * manifest and meta, the three indexes last. Every file is fsynced, so a tree that is complete on
 * disk stays complete after a crash; a tree cut short has no indexes and is never loaded.
 */
export async function writeCatalogTree(dir: string, sources: UpstreamSource[], onProgress?: (p: ImportProgress) => void): Promise<TreeSummary> {
  const bySection = pickSections(sources);
  const files: Manifest['files'] = {};
  const indexes: Record<Section, unknown> = { components: [], automations: {}, boards: [] };
  const counts: Record<Section, number> = { components: 0, automations: 0, boards: 0 };
  const source: Record<string, string> = {};
  const featured: FeaturedRegistry = {};
  let bodyBytes = 0;
  const createdDirs = new Set<string>();
  // Bodies are written (and fsynced) several at a time: one at a time, fsync latency dominates.
  const writes = new BoundedWrites(16);

  for (const section of SECTIONS) {
    const input = bySection.get(section)!;
    if (input.version) source[`${section}_version`] = input.version;
    const seen = new Set<string>();
    const slims: unknown[] = [];
    const byKind: Partial<Record<AutomationKind, unknown[]>> = {};
    onProgress?.({ section, done: 0, total: input.count });
    for await (const entry of input.entries()) {
      const rel = bodyRelPath(section, entry.slim['id'] as string, entry.kind);
      if (seen.has(rel)) throw new KilnError('invalid_args', `${input.origin}: duplicate id ${JSON.stringify(entry.slim['id'])} in ${entry.kind ?? section}`, { id: entry.slim['id'] });
      seen.add(rel);
      const data = Buffer.from(JSON.stringify(entry.body));
      const path = join(dir, rel);
      if (!createdDirs.has(dirname(path))) {
        await mkdir(dirname(path), { recursive: true });
        createdDirs.add(dirname(path));
      }
      await writes.add(writeDurable(path, data));
      files[rel] = [data.length, sha256(data)];
      bodyBytes += data.length;
      if (section === 'boards') {
        const ids = featuredComponentIds(entry.body);
        if (ids.length > 0) featured[entry.slim['id'] as string] = ids;
      }
      if (entry.kind) (byKind[entry.kind] ??= []).push(entry.slim);
      else slims.push(entry.slim);
      counts[section]++;
      if (counts[section] % 50 === 0 || counts[section] === input.count) onProgress?.({ section, done: counts[section], total: input.count });
    }
    indexes[section] = section === 'automations' ? byKind : slims;
  }
  await writes.drain();
  for (const d of createdDirs) await syncDirectory(d);

  const manifest: Manifest = { format: CATALOG_FORMAT, schema_version: CATALOG_SCHEMA_VERSION, files };
  const manifestData = Buffer.from(JSON.stringify(manifest));
  const manifestSha256 = sha256(manifestData);
  await writeDurable(join(dir, MANIFEST_FILE), manifestData);
  const capabilities = sources.find((s) => s.platformCapabilities)?.platformCapabilities ?? {};
  const pinModes = sources.find((s) => s.pinRegistryModes)?.pinRegistryModes ?? {};
  const meta: CatalogMeta = { format: CATALOG_FORMAT, schema_version: CATALOG_SCHEMA_VERSION, source, platform_capabilities: capabilities, pin_registry_modes: pinModes };
  await writeDurable(join(dir, META_FILE), Buffer.from(JSON.stringify(meta)));
  // The indexes last: their presence (with the manifest's hash) is what makes the tree loadable.
  for (const section of SECTIONS) {
    const header: IndexHeader = {
      format: CATALOG_FORMAT,
      schema_version: CATALOG_SCHEMA_VERSION,
      section,
      manifest_sha256: manifestSha256,
      entry_count: counts[section],
      source,
    };
    const extra = section === 'boards' ? { featured_components: featured } : {};
    await writeDurable(join(dir, indexFile(section)), Buffer.from(JSON.stringify({ header, entries: indexes[section], ...extra })));
  }
  await syncDirectory(dir);
  return { counts, bodyBytes, manifestSha256 };
}

/** The distinct component ids a board body's featured components instantiate, in order. */
function featuredComponentIds(body: Record<string, unknown>): string[] {
  const list = Array.isArray(body['featured_components']) ? (body['featured_components'] as unknown[]) : [];
  const ids = list.map((f) => (f && typeof f === 'object' ? (f as Record<string, unknown>)['component_id'] : undefined)).filter((id): id is string => typeof id === 'string');
  return [...new Set(ids)];
}

/** Exactly one source per section; every section present. */
function pickSections(sources: UpstreamSource[]): Map<Section, SectionSource> {
  const bySection = new Map<Section, SectionSource>();
  for (const s of sources.flatMap((u) => u.sections)) {
    const previous = bySection.get(s.section);
    if (previous) {
      throw new KilnError('invalid_args', `${s.section} given twice: ${previous.origin} and ${s.origin}`, { section: s.section, first: previous.origin, second: s.origin });
    }
    bySection.set(s.section, s);
  }
  const missing = SECTIONS.filter((s) => !bySection.has(s));
  if (missing.length > 0) {
    throw new KilnError('invalid_args', `no source for ${missing.join(', ')}: add a --from with ${missing.map((m) => `${m}.json`).join(' / ')} (or an upstream definitions tree)`, { missing });
  }
  return bySection;
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

async function writeDurable(path: string, data: Uint8Array): Promise<void> {
  const handle = await open(path, 'wx', 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** At most `limit` writes in flight; `add` waits for room, `drain` for all (and throws the first failure). */
class BoundedWrites {
  private readonly inFlight = new Set<Promise<void>>();
  private failure: unknown;

  constructor(private readonly limit: number) {}

  async add(write: Promise<void>): Promise<void> {
    const tracked = write.then(
      () => void this.inFlight.delete(tracked),
      (err: unknown) => {
        this.inFlight.delete(tracked);
        this.failure ??= err;
      },
    );
    this.inFlight.add(tracked);
    if (this.inFlight.size >= this.limit) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure;
  }

  async drain(): Promise<void> {
    await Promise.all(this.inFlight);
    if (this.failure) throw this.failure;
  }
}
