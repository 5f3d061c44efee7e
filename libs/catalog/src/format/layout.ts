import { join } from 'node:path';

/**
 * Kiln's catalog on disk (one directory, "a catalog tree"):
 *
 *   manifest.json               every body file with its size and SHA-256
 *   meta.json                   small eager extras: platform capabilities, pin registry modes, versions
 *   components.index.json       header + slim component entries
 *   automations.index.json      header + slim entries per kind
 *   boards.index.json           header + slim board entries + the featured registry (board → component ids)
 *   components/<id>.json        full component body (config_entries …)
 *   automations/<kind>/<id>.json
 *   boards/<id>.json            full board body (pins, hardware, featured components …)
 *
 * Every index header carries the SHA-256 of manifest.json, and the indexes are written last: a tree
 * whose indexes name a different manifest (or whose bodies differ from the manifest) is refused.
 */
export const CATALOG_FORMAT = 'kiln-catalog';
export const CATALOG_SCHEMA_VERSION = 1;

export const MANIFEST_FILE = 'manifest.json';
export const META_FILE = 'meta.json';

export const SECTIONS = ['components', 'automations', 'boards'] as const;
export type Section = (typeof SECTIONS)[number];

export const AUTOMATION_KINDS = ['triggers', 'actions', 'conditions', 'filters', 'light_effects'] as const;
export type AutomationKind = (typeof AUTOMATION_KINDS)[number];

export function indexFile(section: Section): string {
  return `${section}.index.json`;
}

/** A body's path relative to the tree (also its key in the manifest). */
export function bodyRelPath(section: Section, id: string, kind?: AutomationKind): string {
  return section === 'automations' ? `automations/${kind}/${id}.json` : `${section}/${id}.json`;
}

export function bodyPath(root: string, relPath: string): string {
  return join(root, relPath);
}

/** Header of every index file. */
export interface IndexHeader {
  format: typeof CATALOG_FORMAT;
  schema_version: number;
  section: Section;
  /** SHA-256 (hex) of manifest.json as written by the same import. */
  manifest_sha256: string;
  entry_count: number;
  /** Upstream versions the catalog was imported from (informational). */
  source: Record<string, string>;
}

/**
 * The featured registry, kept in boards.index.json beside the entries: for each board with
 * featured components, the ids of the components they instantiate (from the board bodies), so
 * "featured for this board" is answered from the index alone.
 */
export type FeaturedRegistry = Record<string, string[]>;

/** manifest.json: body path → [size in bytes, SHA-256 hex]. */
export interface Manifest {
  format: typeof CATALOG_FORMAT;
  schema_version: number;
  files: Record<string, [number, string]>;
}

export interface CatalogMeta {
  format: typeof CATALOG_FORMAT;
  schema_version: number;
  source: Record<string, string>;
  platform_capabilities: Record<string, unknown>;
  pin_registry_modes: Record<string, string[]>;
}
