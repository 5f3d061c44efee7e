import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pathExists } from '@kiln/core';
import { CURRENT_LINK, resolveCatalogRoot } from './runtime/load.js';

/** The catalog Kiln ships (authored for Kiln; `definitions/source` is its input): `<repo>/definitions/catalog`. */
export const EMBEDDED_CATALOG_DIR = fileURLToPath(new URL('../../../definitions/catalog', import.meta.url));

/** Where `kiln catalog import` writes by default: `<data_dir>/catalog`. */
export function importedCatalogDir(dataDir: string): string {
  return join(dataDir, 'catalog');
}

/** The tree to serve: the configured dir, else the imported catalog when there is one, else the shipped one. */
export async function catalogRootFor(configuredDir: string, dataDir: string): Promise<string> {
  if (configuredDir !== '') return resolveCatalogRoot(configuredDir);
  const imported = importedCatalogDir(dataDir);
  return resolveCatalogRoot((await pathExists(join(imported, CURRENT_LINK))) ? imported : EMBEDDED_CATALOG_DIR);
}
