// Catalog memory and speed on the real upstream catalog (../shared/data/esphome-catalog), in one run:
// - retained heap / external / RSS after loading: Kiln's slim indexes + a warm LRU, next to a naive
//   JSON.parse of upstream's three index files and the upstream "before" (eager parse of every body);
//   each measured in its own node process (Kiln's V8 flags, --expose-gc) so the heaps do not mix;
// - get_components search p50/p99, cold and warm body reads, full import time next to a plain copy.
// Gate: Kiln's heap after load + warm LRU <= 4 MB and >= 15x below the eager load.
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Catalog, importCatalog, resolveCatalogRoot } from '@kiln/catalog';
import { KILN_NODE_FLAGS, table } from './proc.js';

const UPSTREAM = fileURLToPath(new URL('../../../../shared/data/esphome-catalog', import.meta.url));
const TREE = join(UPSTREAM, 'definitions');
const HEAP_CEILING_MB = 4;
const MIN_RATIO = 15;
const LRU = { maxEntries: 128, maxBytes: 8 * 1024 * 1024 };

type Mode = 'kiln' | 'naive-index' | 'eager';
interface Retained {
  mode: Mode;
  heapKb: number;
  externalKb: number;
  rssKb: number;
  loadMs: number;
  detail: string;
}

const kb = (bytes: number) => bytes / 1024;
const MB = (k: number) => `${(k / 1024).toFixed(2)} MB`;

function settle(): NodeJS.MemoryUsage {
  const gc = (globalThis as { gc?: () => void }).gc!;
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage();
}

/** In a fresh process: load one way, keep a reference, report what stays after a full GC. */
async function worker(mode: Mode, root: string): Promise<Retained> {
  const keep: unknown[] = [];
  const before = settle();
  const started = performance.now();
  let detail = '';
  if (mode === 'kiln') {
    const catalog = await Catalog.open(root, LRU);
    const { components } = JSON.parse((await catalog.getComponents({ limit: 1000 })).json) as { components: { id: string }[] };
    // Warm the LRU the way a session does: open component cards until the cache is full.
    for (const c of components) await catalog.getComponentBodies({ componentIds: [c.id] });
    const stats = catalog.cacheStats();
    detail = `LRU ${stats.entries} bodies, ${(stats.bytes / 1024 / 1024).toFixed(1)} MB`;
    keep.push(catalog);
  } else if (mode === 'naive-index') {
    for (const f of ['components.index.json', 'automations.index.json', 'boards.index.json']) keep.push(JSON.parse(await readFile(join(TREE, f), 'utf8')));
    detail = 'JSON.parse of the 3 upstream index files';
  } else {
    for (const f of ['components.json', 'automations.json']) keep.push(JSON.parse(await readFile(join(UPSTREAM, 'monolithic', f), 'utf8')));
    const boards = [];
    for (const f of await readdir(join(TREE, 'board_bodies'))) boards.push(JSON.parse(await readFile(join(TREE, 'board_bodies', f), 'utf8')));
    keep.push(boards);
    detail = 'JSON.parse of every component, automation and board body';
  }
  const loadMs = performance.now() - started;
  const after = settle();
  if (keep.length === 0) throw new Error('nothing kept');
  return {
    mode,
    heapKb: kb(after.heapUsed - before.heapUsed),
    externalKb: kb(after.external - before.external),
    rssKb: kb(after.rss - before.rss),
    loadMs,
    detail,
  };
}

async function measure(mode: Mode, root: string): Promise<Retained> {
  const self = fileURLToPath(import.meta.url);
  const { stdout } = await promisify(execFile)(process.execPath, [...KILN_NODE_FLAGS, '--expose-gc', self, '--worker', mode, root], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout) as Retained;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function timed<T>(fn: () => Promise<T>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

async function speed(root: string): Promise<void> {
  const catalog = await Catalog.open(root, LRU);
  const queries = ['sensor', 'temperature', 'i2c', 'bme280', 'uart', 'light', 'display spi', 'esp32', 'relay', 'voltage current power', 'xyz'];
  const searchMs: number[] = [];
  const filterMs: number[] = [];
  for (let round = 0; round < 100; round++) {
    for (const query of queries) {
      searchMs.push(await timed(() => catalog.getComponents({ query, limit: 50 })));
      filterMs.push(await timed(() => catalog.getComponents({ category: 'sensor', boardId: 'esp32dev', offset: round, limit: 50 })));
    }
  }
  const { components } = JSON.parse((await catalog.getComponents({ limit: 1000 })).json) as { components: { id: string }[] };
  const ids = components.map((c) => c.id);
  // Cold: not in Kiln's cache (the OS page cache is warm after the import: this is Kiln's own cost).
  const cold: number[] = [];
  for (const id of ids) {
    const fresh = await Catalog.open(root, { maxEntries: 1, maxBytes: LRU.maxBytes });
    cold.push(await timed(() => fresh.getComponentBodies({ componentIds: [id] })));
    if (cold.length >= 200) break;
  }
  const warmIds = ids.slice(0, 100);
  for (const id of warmIds) await catalog.getComponentBodies({ componentIds: [id] });
  const warm: number[] = [];
  for (let round = 0; round < 20; round++) for (const id of warmIds) warm.push(await timed(() => catalog.getComponentBodies({ componentIds: [id] })));
  // Baseline for a body read: readFile + JSON.parse of upstream's own body file.
  const parse: number[] = [];
  for (const id of ids.slice(0, 200)) parse.push(await timed(async () => JSON.parse(await readFile(join(TREE, 'components', `${id}.json`), 'utf8'))));
  const rows = [
    ['query', 'p50', 'p99', 'n'],
    ['get_components search (11 queries, limit 50)', ...stats(searchMs)],
    ['get_components category+board filter', ...stats(filterMs)],
    ['component body, cold (read + SHA-256 check)', ...stats(cold)],
    ['component body, warm (LRU hit)', ...stats(warm)],
    ['baseline: readFile + JSON.parse of the body', ...stats(parse)],
  ];
  console.log(table(rows));
  const p50 = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);
  console.log(`warm body read is ${(p50(cold) / p50(warm)).toFixed(1)}x faster than cold (p50)`);
}

function stats(ms: number[]): string[] {
  const sorted = [...ms].sort((a, b) => a - b);
  return [`${percentile(sorted, 50).toFixed(3)} ms`, `${percentile(sorted, 99).toFixed(3)} ms`, String(ms.length)];
}

export async function catalogBenchmarks(): Promise<boolean> {
  const work = await mkdtemp(join(tmpdir(), 'kiln-bench-catalog-'));
  try {
    // Import time of the full catalog, next to a plain recursive copy of the same upstream tree.
    const copyMs = await timed(() => cp(TREE, join(work, 'copy'), { recursive: true }));
    let importMs = 0;
    importMs = await timed(() => importCatalog(join(work, 'catalog'), [TREE]));
    const root = await resolveCatalogRoot(join(work, 'catalog'));
    console.log(`catalog import (936 components, 1,084 automations, 1,040 boards): ${(importMs / 1000).toFixed(2)} s; plain copy of the upstream tree ${(copyMs / 1000).toFixed(2)} s (import = ${(importMs / copyMs).toFixed(1)}x copy: validation, hashing, fsync per file)`);
    console.log();

    const results: Retained[] = [];
    for (const mode of ['kiln', 'naive-index', 'eager'] as const) results.push(await measure(mode, root));
    const byMode = Object.fromEntries(results.map((r) => [r.mode, r])) as Record<Mode, Retained>;
    const label: Record<Mode, string> = {
      kiln: 'Kiln: slim indexes + warm LRU',
      'naive-index': 'naive: upstream index files parsed',
      eager: 'eager (upstream "before")',
    };
    console.log(`catalog memory after load (each in its own node ${KILN_NODE_FLAGS.join(' ')} --expose-gc; retained after full GC)`);
    console.log(
      table([
        ['load', 'heap', 'external', 'heap+external', 'RSS growth', 'load (+warm) time', 'vs eager (heap)', 'what'],
        ...results.map((r) => [
          label[r.mode],
          MB(r.heapKb),
          MB(r.externalKb),
          MB(r.heapKb + r.externalKb),
          MB(r.rssKb),
          `${r.loadMs.toFixed(0)} ms`,
          `${(byMode.eager.heapKb / r.heapKb).toFixed(1)}x less`,
          r.detail,
        ]),
      ]),
    );
    console.log('external = body JSON kept as Buffers in the LRU (bounded by the 8 MB size limit), outside the JS heap.');
    const kilnHeapMb = byMode.kiln.heapKb / 1024;
    const ratio = byMode.eager.heapKb / byMode.kiln.heapKb;
    const ok = kilnHeapMb <= HEAP_CEILING_MB && ratio >= MIN_RATIO;
    console.log(
      `catalog memory gate: heap ${kilnHeapMb.toFixed(2)} MB ${kilnHeapMb <= HEAP_CEILING_MB ? '<=' : '>'} ${HEAP_CEILING_MB} MB, ${ratio.toFixed(1)}x ${ratio >= MIN_RATIO ? '>=' : '<'} ${MIN_RATIO}x below eager: ${ok ? 'pass' : 'FAIL'}`,
    );
    console.log();
    await speed(root);
    return ok;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--worker') {
  process.stdout.write(JSON.stringify(await worker(process.argv[3] as Mode, process.argv[4]!)));
} else if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = (await catalogBenchmarks()) ? 0 : 1;
}
