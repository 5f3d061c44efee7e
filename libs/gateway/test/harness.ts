import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInProcessBus, type Bus } from '@kiln/bus';
import { loadConfig } from '@kiln/config';
import { createCatalogService } from '@kiln/catalog';
import { createDevicesService } from '@kiln/devices';
import type { KilnService, ServiceDeps } from '@kiln/contracts';
import { SIM_BIN } from '@kiln/esphome-sim';
import { createFirmwareService } from '@kiln/firmware';
import { createRootLogger } from '@kiln/logging';
import { createLogStoreService } from '@kiln/logstore';
import { createReceiverService } from '@kiln/receiver';
import { createGatewayService, type GatewayService } from '../src/index.js';

export interface Stack {
  gateway: GatewayService;
  bus: Bus;
  services: KilnService[];
  configDir: string;
  wsUrl: string;
  close(): Promise<void>;
}

/** Log store + catalog + firmware (simulator) + devices + gateway on one in-process bus, as `kiln supervise` hosts them. */
export async function startStack(options: { devices?: string[]; knobs?: object; settings?: Record<string, string>; receiver?: boolean } = {}): Promise<Stack> {
  const root = await mkdtemp(join(tmpdir(), 'kiln-gateway-'));
  const configDir = join(root, 'config');
  await mkdir(configDir, { recursive: true });
  for (const d of options.devices ?? ['kitchen', 'porch']) await writeFile(join(configDir, `${d}.yaml`), `esphome:\n  name: ${d}\nesp32:\n  board: esp32dev\n`);
  const knobs = join(root, 'knobs.json');
  await writeFile(knobs, JSON.stringify(options.knobs ?? { default: { compileMs: 200, uploadMs: 100, steps: 10 } }));
  process.env['ESPHOME_SIM_KNOBS'] = knobs;
  const settings = { 'gateway.listen': '127.0.0.1:0', 'receiver.grpcListen': '127.0.0.1:0', 'firmware.toolchain': SIM_BIN, 'firmware.outputBatchMs': '10', 'logstore.flushIntervalMs': '5', ...options.settings };
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
  const services: KilnService[] = [createLogStoreService(deps('logstore')), createCatalogService(deps('catalog')), createFirmwareService(deps('firmware')), createDevicesService(deps('devices'))];
  if (options.receiver) services.push(createReceiverService(deps('receiver')));
  const gateway = createGatewayService(deps('gateway'));
  services.push(gateway);
  for (const s of services) await s.start();
  return {
    gateway,
    bus,
    services,
    configDir,
    wsUrl: `${gateway.server!.url.replace('http', 'ws')}/ws`,
    async close() {
      for (const s of [...services].reverse()) await s.stop();
      await bus.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

export { GatewayClient as Client, type Frame } from '../src/client.js';
