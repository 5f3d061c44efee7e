// Idle memory of `kiln supervise` (compiled JS, every service) next to a bare node process, in one run.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mb, settledMemory, table, waitReady } from './proc.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const kiln = join(root, 'apps/kiln/bin/kiln');

async function measureBareNode(): Promise<{ rssKb: number; pssKb: number }> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  try {
    return (await settledMemory([child.pid!]))[0]!;
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
    await waitReady(dataDir, 'supervise', child);
    return (await settledMemory([child.pid!]))[0]!;
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
