// Idle memory of `kiln supervise` (compiled JS, every service) next to a bare node process, on each Node
// release Kiln is tested on (tools/node/versions.env: the official binaries, fetched once), in one run.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { mb, settledMemory, table, waitReady, type Memory } from './proc.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const kiln = join(root, 'apps/kiln/bin/kiln');
/** Real upstream catalog data (../shared beside the checkout): the idle state a NAS user runs. */
const UPSTREAM_CATALOG = join(root, '../shared/data/esphome-catalog/definitions');

/**
 * Idle is after V8's memory reducer: it starts 8 s after startup (`--gc-memory-reducer-start-delay-ms`)
 * and compacts the heap the startup left (~4 MB of RSS with the full catalog). Sampled earlier, the
 * figure is the tail of startup, not the state a process idles in for hours.
 */
const IDLE_SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 12_000);

/** The gate: kiln supervise with the full upstream catalog on the primary Node release (bare node is ~42 MB). */
const IDLE_RSS_CEILING_MB = Number(process.env.BENCH_IDLE_RSS_CEILING_MB ?? 75);

/** The Node releases to measure: `BENCH_NODES=primary,22.23.5` or the pinned three, oldest first. */
const NODES = (process.env.BENCH_NODES ?? 'previous,secondary,primary').split(',');

/** The bin dir of a pinned Node release (fetched from the npm registry on first use). */
function nodeBin(which: string): string {
  return execFileSync(join(root, 'tools/node/node-release'), [which], { encoding: 'utf8' }).trim();
}

function withNode(bin: string): NodeJS.ProcessEnv {
  // apps/kiln/bin/kiln runs the first `node` on PATH.
  return { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH ?? ''}`, KILN_LOG_LEVEL: 'warn' };
}

async function measureBareNode(bin: string): Promise<Memory> {
  const child = spawn(join(bin, 'node'), ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  try {
    return (await settledMemory([child.pid!], IDLE_SETTLE_MS))[0]!;
  } finally {
    child.kill('SIGKILL');
  }
}

async function measureSupervise(bin: string, catalogDataDir: string | undefined, extraArgs: string[] = []): Promise<Memory> {
  const dataDir = await mkdtemp(join(tmpdir(), 'kiln-bench-idle-'));
  if (catalogDataDir) await cp(join(catalogDataDir, 'catalog'), join(dataDir, 'catalog'), { recursive: true });
  const child = spawn(kiln, ['supervise', '--data-dir', dataDir, '--set', 'supervisor.healthListen=127.0.0.1:0', '--set', 'gateway.listen=127.0.0.1:0', ...extraArgs], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: withNode(bin),
  });
  try {
    await waitReady(dataDir, 'supervise', child);
    return (await settledMemory([child.pid!], IDLE_SETTLE_MS))[0]!;
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await rm(dataDir, { recursive: true, force: true });
  }
}

interface NodeFigures {
  which: string;
  version: string;
  bare: Memory;
  supervise: Memory;
  catalog: Memory;
  grpc: Memory;
}

/** Measures every release in NODES, prints the table; resolves false when the primary release is over the ceiling. */
export async function idleRss(): Promise<boolean> {
  // The catalog is imported once (with the Node running this script) and copied into each measured data dir.
  const catalogDataDir = await mkdtemp(join(tmpdir(), 'kiln-bench-catalog-'));
  const figures: NodeFigures[] = [];
  try {
    await promisify(execFile)(kiln, ['catalog', 'import', '--from', UPSTREAM_CATALOG, '--data-dir', catalogDataDir]);
    for (const which of NODES) {
      const bin = nodeBin(which);
      const version = execFileSync(join(bin, 'node'), ['--version'], { encoding: 'utf8' }).trim();
      console.error(`measuring on node ${version}…`);
      figures.push({
        which,
        version,
        bare: await measureBareNode(bin),
        supervise: await measureSupervise(bin, undefined),
        catalog: await measureSupervise(bin, catalogDataDir),
        grpc: await measureSupervise(bin, catalogDataDir, ['--set', 'logstore.grpcListen=127.0.0.1:0']),
      });
    }
  } finally {
    await rm(catalogDataDir, { recursive: true, force: true });
  }
  const ratio = (a: Memory, b: Memory) => `${(a.rssKb / b.rssKb).toFixed(2)}x`;
  console.log(`idle memory: kiln supervise (every service, compiled JS) vs bare node on the same Node release, median of 5 samples after ${IDLE_SETTLE_MS / 1000} s idle`);
  const rows = [['node', 'process', 'RSS', 'PSS', 'RSS vs bare', 'above bare']];
  for (const f of figures) {
    const row = (name: string, m: Memory) => [f.version, name, mb(m.rssKb), mb(m.pssKb), ratio(m, f.bare), mb(m.rssKb - f.bare.rssKb)];
    rows.push(row('bare node (setInterval)', f.bare));
    rows.push(row('kiln supervise, shipped catalog', f.supervise));
    rows.push(row('kiln supervise, full upstream catalog', f.catalog));
    rows.push(row('  + log store gRPC on', f.grpc));
  }
  console.log(table(rows));
  const primary = figures.find((f) => f.which === 'primary');
  if (!primary) return true;
  const rssMb = primary.catalog.rssKb / 1024;
  const ok = rssMb <= IDLE_RSS_CEILING_MB;
  console.log(`idle memory gate: kiln supervise, full upstream catalog, node ${primary.version}: ${rssMb.toFixed(1)} MB ${ok ? '<=' : '>'} ${IDLE_RSS_CEILING_MB} MB RSS: ${ok ? 'pass' : 'FAIL'}`);
  return ok;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = (await idleRss()) ? 0 : 1;
