import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInProcessBus, type Bus } from '@kiln/bus';
import { loadConfig } from '@kiln/config';
import type { KilnService, ServiceDeps } from '@kiln/contracts';
import { SIM_BIN } from '@kiln/esphome-sim';
import { createFirmwareService } from '@kiln/firmware';
import { createRootLogger } from '@kiln/logging';
import { createLogStoreService } from '@kiln/logstore';
import WebSocket from 'ws';
import { createGatewayService, type GatewayService } from '../src/index.js';

export interface Stack {
  gateway: GatewayService;
  bus: Bus;
  configDir: string;
  wsUrl: string;
  close(): Promise<void>;
}

/** Log store + firmware (simulator) + gateway on one in-process bus, as `kiln supervise` hosts them. */
export async function startStack(options: { devices?: string[]; knobs?: object; settings?: Record<string, string> } = {}): Promise<Stack> {
  const root = await mkdtemp(join(tmpdir(), 'kiln-gateway-'));
  const configDir = join(root, 'config');
  await mkdir(configDir, { recursive: true });
  for (const d of options.devices ?? ['kitchen', 'porch']) await writeFile(join(configDir, `${d}.yaml`), `esphome:\n  name: ${d}\nesp32:\n  board: esp32dev\n`);
  const knobs = join(root, 'knobs.json');
  await writeFile(knobs, JSON.stringify(options.knobs ?? { default: { compileMs: 200, uploadMs: 100, steps: 10 } }));
  process.env['ESPHOME_SIM_KNOBS'] = knobs;
  const settings = { 'gateway.listen': '127.0.0.1:0', 'firmware.toolchain': SIM_BIN, 'firmware.outputBatchMs': '10', 'logstore.flushIntervalMs': '5', ...options.settings };
  const config = await loadConfig({
    env: { HOME: '/nonexistent' },
    flags: [
      { path: 'dataDir', value: join(root, 'data'), flag: '--data-dir' },
      { path: 'configDir', value: configDir, flag: '--config-dir' },
      ...Object.entries(settings).map(([path, value]) => ({ path, value, flag: `--set ${path}` })),
    ],
  });
  const bus = createInProcessBus();
  const logger = await createRootLogger({ level: 'silent', pretty: false });
  const deps = (name: string): ServiceDeps => ({ name, bus, config, logger: logger.child({ service: name }), fail: () => undefined });
  const services: KilnService[] = [createLogStoreService(deps('logstore')), createFirmwareService(deps('firmware'))];
  const gateway = createGatewayService(deps('gateway'));
  services.push(gateway);
  for (const s of services) await s.start();
  return {
    gateway,
    bus,
    configDir,
    wsUrl: `${gateway.server!.url.replace('http', 'ws')}/ws`,
    async close() {
      for (const s of [...services].reverse()) await s.stop();
      await bus.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

export type Frame = Record<string, unknown> & { message_id?: number | string | null; event?: string; result?: unknown; error_code?: string; data?: unknown };

/** A real WebSocket client speaking the protocol: send commands, await results, collect stream frames. */
export class Client {
  readonly frames: Frame[] = [];
  private nextId = 1;
  private waiters: Array<{ match: (f: Frame) => boolean; resolve: (f: Frame) => void }> = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Frame;
      this.frames.push(frame);
      for (const w of [...this.waiters]) {
        if (w.match(frame)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(frame);
        }
      }
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static async connect(url: string): Promise<Client> {
    const ws = new WebSocket(url);
    const client = new Client(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return client;
  }

  /** Send a command; returns its message id. */
  send(command: string, args: Record<string, unknown> = {}): number {
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ command, message_id: id, args }));
    return id;
  }

  sendRaw(text: string): void {
    this.ws.send(text);
  }

  /** The first frame (already received or future) that matches. */
  next(match: (f: Frame) => boolean, timeoutMs = 20_000): Promise<Frame> {
    const seen = this.frames.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames.slice(-3))}`)), timeoutMs);
      this.waiters.push({ match, resolve: (f) => (clearTimeout(timer), resolve(f)) });
    });
  }

  /** Send and await the final frame (result or error) for it. */
  async call(command: string, args: Record<string, unknown> = {}): Promise<Frame> {
    const id = this.send(command, args);
    return this.next((f) => f.message_id === id && ('result' in f || 'error_code' in f));
  }

  close(): void {
    this.ws.close();
  }
}
