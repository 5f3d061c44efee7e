// `npm run bench:memory`: idle memory of `kiln supervise` hosting every service next to the same
// services each in its own process (`kiln serve <svc>`), both over NATS, measured in one run.
// The services come from apps/kiln's registry, so a service added there is measured automatically.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type { ServiceDefinition } from '@kiln/contracts';
import { mb, settledMemory, table, waitReady, type Memory } from './proc.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const kiln = join(root, 'apps/kiln/bin/kiln');
const NATS_URL = process.env.KILN_BENCH_NATS ?? 'nats://127.0.0.1:4222';
/**
 * Targets (seed 004: pay the import floor once). The ratio is reported against its target; it falls
 * as services are added (each process pays Node's ~55 MB floor, a hosted service adds a few MB), so
 * only the RSS ceiling gates (exit 1): it catches a service that starts loading heavy modules at idle.
 */
const TARGET_RATIO = 0.3;
const TARGET_SUPERVISED_RSS_KB = 90 * 1024;

/** The registry as built (apps/kiln/dist): importing it loads no service, only their definitions. */
async function registeredServices(): Promise<string[]> {
  const registry = (await import(pathToFileURL(join(root, 'apps/kiln/dist/registry.js')).href)) as { serviceDefinitions: readonly ServiceDefinition[] };
  // The services `kiln supervise` hosts by default (opt-in ones such as the receiver are not idle-herd members).
  return registry.serviceDefinitions.filter((d) => d.defaultHosted !== false).map((d) => d.name);
}

/** Real upstream catalog data (../shared beside the checkout): the idle state with the full catalog imported. */
const UPSTREAM_CATALOG = join(root, '../shared/data/esphome-catalog/definitions');

/** Data-dir preparation, run once before anything is measured: the full upstream catalog imported. */
async function prepareDataDir(dataDir: string, configDir: string): Promise<void> {
  await mkdir(configDir, { recursive: true });
  await promisify(execFile)(kiln, ['catalog', 'import', '--from', UPSTREAM_CATALOG, '--data-dir', dataDir]);
}

interface Started {
  host: string;
  child: ChildProcess;
}

function startKiln(args: string[], host: string, dataDir: string, configDir: string, prefix: string): Started {
  const child = spawn(
    kiln,
    [...args, '--data-dir', dataDir, '--config-dir', configDir, '--nats', NATS_URL, '--set', `natsPrefix=${prefix}`, '--set', 'supervisor.healthListen=127.0.0.1:0', '--set', 'gateway.listen=127.0.0.1:0'],
    { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, KILN_LOG_LEVEL: 'warn' } },
  );
  return { host, child };
}

async function stopAll(started: Started[]): Promise<void> {
  await Promise.all(
    started.map(async ({ child }) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }),
  );
}

/** Start the hosts (in order: each one ready before the next, as a service manager would), sample them together. */
async function measure(hosts: Array<{ args: string[]; host: string }>, dataDir: string, configDir: string): Promise<Memory[]> {
  const prefix = `bench${process.pid}x${Math.random().toString(36).slice(2, 8)}`;
  const started: Started[] = [];
  try {
    for (const h of hosts) {
      const s = startKiln(h.args, h.host, dataDir, configDir, prefix);
      started.push(s);
      await waitReady(dataDir, h.host, s.child);
    }
    return await settledMemory(started.map((s) => s.child.pid!));
  } finally {
    await stopAll(started);
  }
}

const sum = (ms: Memory[]): Memory => ms.reduce((a, m) => ({ rssKb: a.rssKb + m.rssKb, pssKb: a.pssKb + m.pssKb }), { rssKb: 0, pssKb: 0 });
const pct = (a: number, b: number) => `${((a / b) * 100).toFixed(0)}%`;

export async function memorySplit(): Promise<boolean> {
  const services = await registeredServices();
  const work = await mkdtemp(join(tmpdir(), 'kiln-bench-split-'));
  const dataDir = join(work, 'data');
  const configDir = join(work, 'config');
  try {
    await prepareDataDir(dataDir, configDir);
    const [supervised] = await measure([{ args: ['supervise'], host: 'supervise' }], dataDir, configDir);
    const split = await measure(services.map((svc) => ({ args: ['serve', svc], host: `serve-${svc}` })), dataDir, configDir);
    const total = sum(split);
    const ratioRss = supervised!.rssKb / total.rssKb;
    const ratioPss = supervised!.pssKb / total.pssKb;
    console.log(`idle memory over NATS, full upstream catalog imported: kiln supervise hosting ${services.join(', ')} vs each as its own process (kiln serve), median of 5 samples`);
    console.log(
      table([
        ['process', 'RSS', 'PSS'],
        [`kiln supervise (${services.length} services)`, mb(supervised!.rssKb), mb(supervised!.pssKb)],
        ...services.map((svc, i) => [`kiln serve ${svc}`, mb(split[i]!.rssKb), mb(split[i]!.pssKb)]),
        [`split total (${services.length} processes)`, mb(total.rssKb), mb(total.pssKb)],
        ['supervised / split', pct(supervised!.rssKb, total.rssKb), pct(supervised!.pssKb, total.pssKb)],
      ]),
    );
    const ratioOk = ratioRss <= TARGET_RATIO;
    const rssOk = supervised!.rssKb <= TARGET_SUPERVISED_RSS_KB;
    console.log(`target supervised/split RSS ≤ ${pct(TARGET_RATIO, 1)}: ${ratioOk ? 'met' : 'not met'} (${pct(ratioRss, 1)} RSS, ${pct(ratioPss, 1)} PSS)`);
    console.log(`gate supervised idle RSS ≤ ${mb(TARGET_SUPERVISED_RSS_KB)}: ${rssOk ? 'met' : 'FAILED'} (${mb(supervised!.rssKb)})`);
    return rssOk;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = (await memorySplit()) ? 0 : 1;
