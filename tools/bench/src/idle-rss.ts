// Idle memory of `kiln supervise` (compiled JS, every service) next to a bare node process, in one run.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mb, memoryOf, sleep, table } from './proc.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const kiln = join(root, 'apps/kiln/bin/kiln');
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 3_000);
const SAMPLES = 5;

async function waitReady(dataDir: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`kiln supervise exited with ${child.exitCode}`);
    try {
      const run = JSON.parse(await readFile(join(dataDir, 'run/supervise.json'), 'utf8')) as { healthUrl?: string };
      if (run.healthUrl && (await fetch(`${run.healthUrl}/ready`)).status === 200) return;
    } catch {
      // not up yet
    }
    await sleep(50);
  }
  throw new Error('kiln supervise did not become ready');
}

async function settledMemory(pid: number): Promise<{ rssKb: number; pssKb: number }> {
  await sleep(SETTLE_MS);
  const samples = [];
  for (let i = 0; i < SAMPLES; i++) {
    samples.push(await memoryOf(pid));
    await sleep(200);
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return { rssKb: median(samples.map((s) => s.rssKb)), pssKb: median(samples.map((s) => s.pssKb)) };
}

async function measureBareNode(): Promise<{ rssKb: number; pssKb: number }> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  try {
    return await settledMemory(child.pid!);
  } finally {
    child.kill('SIGKILL');
  }
}

async function measureSupervise(extraArgs: string[]): Promise<{ rssKb: number; pssKb: number }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'kiln-bench-idle-'));
  const child = spawn(kiln, ['supervise', '--data-dir', dataDir, '--set', 'supervisor.healthListen=127.0.0.1:0', '--set', 'gateway.listen=127.0.0.1:0', ...extraArgs], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, KILN_LOG_LEVEL: 'warn' },
  });
  try {
    await waitReady(dataDir, child);
    return await settledMemory(child.pid!);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await rm(dataDir, { recursive: true, force: true });
  }
}

export async function idleRss(): Promise<{ superviseRssKb: number; bareRssKb: number }> {
  const bare = await measureBareNode();
  const supervise = await measureSupervise([]);
  const withGrpc = await measureSupervise(['--set', 'logstore.grpcListen=127.0.0.1:0']);
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
  console.log('idle memory: kiln supervise (every service, compiled JS) vs bare node, median of 5 samples');
  console.log(
    table([
      ['process', 'RSS', 'PSS', 'RSS vs bare'],
      ['bare node (setInterval)', mb(bare.rssKb), mb(bare.pssKb), '1.00x'],
      ['kiln supervise (embedded default)', mb(supervise.rssKb), mb(supervise.pssKb), ratio(supervise.rssKb, bare.rssKb)],
      ['kiln supervise + log store gRPC', mb(withGrpc.rssKb), mb(withGrpc.pssKb), ratio(withGrpc.rssKb, bare.rssKb)],
    ]),
  );
  console.log(`kiln supervise above bare node: ${mb(supervise.rssKb - bare.rssKb)} RSS (${mb(withGrpc.rssKb - bare.rssKb)} with gRPC on)`);
  return { superviseRssKb: supervise.rssKb, bareRssKb: bare.rssKb };
}

if (import.meta.url === `file://${process.argv[1]}`) await idleRss();
