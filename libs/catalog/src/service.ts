import { catalogPb, serveBus, type KilnService, type ServiceDeps } from '@kiln/contracts';
import { disposeAll, KilnError } from '@kiln/core';
import type { Logger } from '@kiln/logging';
import { catalogRootFor, EMBEDDED_CATALOG_DIR } from './paths.js';
import { Catalog } from './runtime/catalog.js';
import type { BodyCacheLimits } from './runtime/bodies.js';
import { catalogSettingsSchema } from './settings.js';

export const CATALOG_SERVICE = 'catalog';

export interface CatalogService extends KilnService {
  /** The loaded catalog once started (what it serves on the bus: CatalogService). */
  readonly catalog: Catalog | undefined;
}

/** A catalog that could not be served, and why (`failed_precondition` from loading it). */
interface BrokenCatalog {
  root: string;
  error: KilnError;
}

export function createCatalogService(deps: ServiceDeps): CatalogService {
  const settings = deps.config.section(CATALOG_SERVICE, catalogSettingsSchema);
  let catalog: Catalog | undefined;
  let broken: BrokenCatalog | undefined;
  let bindings: Disposable[] = [];
  return {
    name: CATALOG_SERVICE,
    get catalog() {
      return catalog;
    },
    async start() {
      const root = await catalogRootFor(settings.dir, deps.config.core.dataDir);
      ({ catalog, broken } = await openServable(root, { maxEntries: settings.cacheEntries, maxBytes: settings.cacheBytes }, deps.logger));
      bindings = serveBus(deps.bus, catalogPb.CatalogServiceDefinition, catalog);
      deps.logger.info({ root: catalog.root, ...catalog.counts() }, 'catalog ready');
    },
    async stop() {
      disposeAll(bindings);
      bindings = [];
      catalog = undefined;
      broken = undefined;
    },
    health: () => {
      if (!catalog) return { ok: false };
      const stats = catalog.cacheStats();
      const fallback: Record<string, string> = broken ? { brokenRoot: broken.root, brokenProblem: String(broken.error.details['problem'] ?? broken.error.message) } : {};
      return { ok: true, detail: { root: catalog.root, cachedBodies: String(stats.entries), cachedBytes: String(stats.bytes), ...fallback } };
    },
  };
}

/**
 * The catalog at `root`, or, when that tree is broken (a file missing, truncated or not JSON: what
 * loading checks), the shipped catalog with a warning naming the broken file. One bad import must
 * not keep the host from starting: the gateway and the firmware service wait for the catalog.
 * A body whose bytes changed without changing size is found only when read: that one request is
 * answered with failed_precondition naming the file, and everything else keeps working.
 */
async function openServable(root: string, limits: BodyCacheLimits, logger: Logger): Promise<{ catalog: Catalog; broken: BrokenCatalog | undefined }> {
  try {
    return { catalog: await Catalog.open(root, limits), broken: undefined };
  } catch (err) {
    if (root === EMBEDDED_CATALOG_DIR || !(err instanceof KilnError) || err.code !== 'failed_precondition') throw err;
    const { file, problem } = err.details as { file?: string; problem?: string };
    logger.warn(
      { root, file, problem, serving: EMBEDDED_CATALOG_DIR },
      `catalog at ${root} is broken (${problem ?? err.message}): serving the catalog shipped with Kiln instead; re-run \`kiln catalog import\`, then \`kiln control catalog restart\``,
    );
    return { catalog: await Catalog.open(EMBEDDED_CATALOG_DIR, limits), broken: { root, error: err } };
  }
}
