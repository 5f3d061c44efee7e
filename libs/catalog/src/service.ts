import { serveCatalogOnBus, type KilnService, type ServiceDeps } from '@kiln/contracts';
import { disposeAll } from '@kiln/core';
import { catalogRootFor } from './paths.js';
import { Catalog } from './runtime/catalog.js';
import { catalogSettingsSchema } from './settings.js';

export const CATALOG_SERVICE = 'catalog';

export interface CatalogService extends KilnService {
  /** The loaded catalog once started (the same contract the bus client offers). */
  readonly catalog: Catalog | undefined;
}

export function createCatalogService(deps: ServiceDeps): CatalogService {
  const settings = deps.config.section(CATALOG_SERVICE, catalogSettingsSchema);
  let catalog: Catalog | undefined;
  let bindings: Disposable[] = [];
  return {
    name: CATALOG_SERVICE,
    get catalog() {
      return catalog;
    },
    async start() {
      const root = await catalogRootFor(settings.dir, deps.config.core.dataDir);
      catalog = await Catalog.open(root, { maxEntries: settings.cacheEntries, maxBytes: settings.cacheBytes });
      bindings = serveCatalogOnBus(deps.bus, catalog);
      deps.logger.info({ root, ...catalog.counts() }, 'catalog ready');
    },
    async stop() {
      disposeAll(bindings);
      bindings = [];
      catalog = undefined;
    },
    health: () => {
      if (!catalog) return { ok: false };
      const stats = catalog.cacheStats();
      return { ok: true, detail: { root: catalog.root, cachedBodies: String(stats.entries), cachedBytes: String(stats.bytes) } };
    },
  };
}
