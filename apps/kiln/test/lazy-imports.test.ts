import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { KILN, tempDataDir } from './cli-harness.js';

const recorder = fileURLToPath(new URL('./fixtures/record-imports.mjs', import.meta.url));

/** Start supervise under the import recorder, wait until ready, stop it, return every module it resolved. */
async function importsOf(extraArgs: string[]): Promise<string[]> {
  const { dir, cleanup } = await tempDataDir();
  const log = join(dir, 'imports.log');
  try {
    const child = spawn(process.execPath, ['--import', recorder, KILN, 'supervise', '--data-dir', dir, '--set', 'supervisor.healthListen=127.0.0.1:0', '--set', 'gateway.listen=127.0.0.1:0', ...extraArgs], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, HOME: dir, IMPORT_LOG: log },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    for (let i = 0; i < 400 && !out.includes('(ready)'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(out).toContain('(ready)');
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    return (await readFile(log, 'utf8')).split('\n').filter(Boolean);
  } finally {
    await cleanup();
  }
}

describe('what a host does not use, it does not import', () => {
  it('the embedded default loads neither the NATS client nor gRPC', async () => {
    const urls = await importsOf([]);
    expect(urls.some((u) => u.includes('/libs/logstore/'))).toBe(true);
    expect(urls.filter((u) => u.includes('@nats-io'))).toEqual([]);
    expect(urls.filter((u) => u.includes('@grpc'))).toEqual([]);
  });

  it('turning the log store gRPC endpoint on loads gRPC (the recorder sees it)', async () => {
    const urls = await importsOf(['--set', 'logstore.grpcListen=127.0.0.1:0']);
    expect(urls.some((u) => u.includes('@grpc/grpc-js'))).toBe(true);
    expect(urls.filter((u) => u.includes('@nats-io'))).toEqual([]);
  });
});
