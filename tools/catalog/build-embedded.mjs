// Regenerate the catalog Kiln ships (definitions/catalog) from its authored source (definitions/source).
// Deterministic: the same source gives byte-identical files (a test checks the committed tree is current).
// Run after `npm run build`: npm run catalog:embedded
import { mkdir, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { openUpstreamSource, writeCatalogTree } from '../../libs/catalog/dist/index.js';

const source = fileURLToPath(new URL('../../definitions/source', import.meta.url));
const target = fileURLToPath(new URL('../../definitions/catalog', import.meta.url));
await rm(target, { recursive: true, force: true });
await mkdir(target, { recursive: true });
const summary = await writeCatalogTree(target, [await openUpstreamSource(source)]);
console.log(`definitions/catalog: ${JSON.stringify(summary.counts)}, manifest ${summary.manifestSha256.slice(0, 12)}`);
