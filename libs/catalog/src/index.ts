export { createCatalogService, CATALOG_SERVICE, type CatalogService } from './service.js';
export { catalogSettingsSchema, type CatalogSettings } from './settings.js';
export { Catalog, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './runtime/catalog.js';
export { loadCatalog, resolveCatalogRoot, CURRENT_LINK } from './runtime/load.js';
export { importCatalog, type ImportResult } from './import/install.js';
export { writeCatalogTree, type ImportProgress } from './import/write-tree.js';
export { openUpstreamSource } from './import/sources.js';
export { EMBEDDED_CATALOG_DIR, importedCatalogDir, catalogRootFor } from './paths.js';
export * from './format/index.js';
