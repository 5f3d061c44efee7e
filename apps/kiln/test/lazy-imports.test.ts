import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SIM_BIN } from '@kiln/esphome-sim';
import { GatewayClient } from '@kiln/gateway';
import { describe, expect, it } from 'vitest';
import { KILN, tempDataDir } from './cli-harness.js';

const recorder = fileURLToPath(new URL('./fixtures/record-imports.mjs', import.meta.url));

/** The WebSocket API of the supervise host running in `dir`. */
async function gatewayOf(dir: string): Promise<GatewayClient> {
  const { healthUrl } = JSON.parse(await readFile(join(dir, 'run', 'supervise.json'), 'utf8')) as { healthUrl: string };
  const health = (await (await fetch(`${healthUrl}/health`)).json()) as { services: Array<{ name: string; health?: { detail?: Record<string, string> } }> };
  const url = health.services.find((s) => s.name === 'gateway')!.health!.detail!.url!;
  return GatewayClient.connect(`${url.replace('http', 'ws')}/ws`);
}

/** Modules of an npm package among the recorded URLs. */
const modulesOf = (urls: string[], pkg: string): string[] => urls.filter((u) => u.includes(`/node_modules/${pkg}/`));

/** Node's HTTP client stack (undici, with tls and http2): a Kiln host only serves plain HTTP. */
const HTTP_CLIENT_BUILTINS = ['builtin:internal/deps/undici/undici', 'builtin:tls', 'builtin:http2'];

/**
 * Start supervise under the import recorder, wait until ready, run `during` (with its data dir), stop
 * it, return every module it resolved and (as `builtin:<id>`) every Node built-in it loaded.
 * `before` prepares the data dir before the host starts.
 */
async function importsOf(extraArgs: string[], during?: (dir: string) => Promise<void>, before?: (dir: string) => Promise<void>): Promise<string[]> {
  const { dir, cleanup } = await tempDataDir();
  const log = join(dir, 'imports.log');
  try {
    await before?.(dir);
    const child = spawn(process.execPath, ['--import', recorder, KILN, 'supervise', '--data-dir', dir, '--set', 'supervisor.healthListen=127.0.0.1:0', '--set', 'gateway.listen=127.0.0.1:0', ...extraArgs], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, HOME: dir, IMPORT_LOG: log },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    for (let i = 0; i < 400 && !out.includes('(ready)'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(out).toContain('(ready)');
    await during?.(dir);
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
    // The offloader reads its identity file with node:crypto; the certificate generator is for creating one.
    expect(urls.filter((u) => u.includes('@peculiar') || u.includes('reflect-metadata'))).toEqual([]);
  });

  it('an idle host loads neither the YAML parser, the process runner, the WebSocket library nor an HTTP client', async () => {
    const urls = await importsOf([]);
    expect(urls.some((u) => u.includes('/libs/gateway/'))).toBe(true);
    expect(urls).toContain('builtin:http');
    expect(modulesOf(urls, 'yaml')).toEqual([]);
    expect(modulesOf(urls, 'execa')).toEqual([]);
    expect(modulesOf(urls, 'ws')).toEqual([]);
    // On Node 22+ `import { createServer } from 'node:http'` reads http's lazy WebSocket getter and so loads undici.
    expect(urls.filter((u) => HTTP_CLIENT_BUILTINS.includes(u))).toEqual([]);
  });

  it('a device config, a WebSocket client and a compile load the YAML parser, the WebSocket library and the process runner', async () => {
    let status = '';
    const urls = await importsOf(
      ['--set', `firmware.toolchain=${SIM_BIN}`],
      async (dir) => {
        const ws = await gatewayOf(dir);
        try {
          const { id } = (await ws.call('firmware/compile', { configuration: 'porch.yaml' })).result as { id: string };
          for (let i = 0; i < 400 && !['completed', 'failed', 'cancelled'].includes(status); i++) {
            status = ((await ws.call('firmware/get_job', { job_id: id })).result as { status: string }).status;
            await new Promise((r) => setTimeout(r, 50));
          }
        } finally {
          ws.close();
        }
      },
      async (dir) => {
        // The default config dir (<data dir>/config) holds one device.
        await mkdir(join(dir, 'config'));
        await writeFile(join(dir, 'config', 'porch.yaml'), 'esphome:\n  name: porch\nesp32:\n  board: esp32dev\n');
      },
    );
    expect(status).toBe('completed');
    expect(modulesOf(urls, 'yaml').length).toBeGreaterThan(0);
    expect(modulesOf(urls, 'ws').length).toBeGreaterThan(0);
    expect(modulesOf(urls, 'execa').length).toBeGreaterThan(0);
    // ws brings tls for its client side, but still no undici.
    expect(urls).not.toContain('builtin:internal/deps/undici/undici');
  });

  it('turning the log store gRPC endpoint on loads gRPC (the recorder sees it)', async () => {
    const urls = await importsOf(['--set', 'logstore.grpcListen=127.0.0.1:0']);
    expect(urls.some((u) => u.includes('@grpc/grpc-js'))).toBe(true);
    expect(urls.filter((u) => u.includes('@nats-io'))).toEqual([]);
  });

  it('a subscriber\'s snapshot neither creates the offloader identity nor loads the certificate generator', async () => {
    let offloader: unknown;
    let identityWritten = true;
    const urls = await importsOf([], async (dir) => {
      const ws = await gatewayOf(dir);
      try {
        const id = ws.send('subscribe_events');
        const frame = await ws.next((f) => f.message_id === id && f.event === 'initial_state');
        offloader = (frame.data as { remote_build: { offloader: unknown } }).remote_build.offloader;
        identityWritten = await readFile(join(dir, 'offloader', 'identity', 'identity.json')).then(() => true, () => false);
      } finally {
        ws.close();
      }
    });
    expect(offloader).toMatchObject({ identity: null, pairings: [] });
    expect(identityWritten).toBe(false);
    expect(urls.filter((u) => u.includes('@peculiar') || u.includes('reflect-metadata'))).toEqual([]);
  });

  it("showing this host's offloader pin (get_offloader_settings creates the identity) loads no gRPC", async () => {
    let pin = '';
    const urls = await importsOf([], async (dir) => {
      const ws = await gatewayOf(dir);
      try {
        const frame = await ws.call('remote_build/get_offloader_settings');
        pin = ((frame as { result?: { identity?: { pin_sha256?: string } } }).result?.identity?.pin_sha256 ?? JSON.stringify(frame));
      } finally {
        ws.close();
      }
    });
    expect(pin).toMatch(/^[0-9a-f]{64}$/);
    // The certificate generator ran (the identity was created) ...
    expect(urls.some((u) => u.includes('@peculiar/x509'))).toBe(true);
    // ... and nothing of gRPC came with it.
    expect(urls.filter((u) => u.includes('@grpc'))).toEqual([]);
  });
});
