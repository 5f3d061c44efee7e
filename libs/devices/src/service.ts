import { mkdir } from 'node:fs/promises';
import { busClient, FORGET_BUILD_TIMEOUT_MS, devicesPb, firmwarePb, serveBus, type KilnService, type ServiceDeps } from '@kiln/contracts';
import { disposeAll } from '@kiln/core';
import { DevicesBusService, publishDeviceEvents } from './bus-service.js';
import { DeviceRegistry } from './registry.js';

export const DEVICES_SERVICE = 'devices';

export interface DevicesService extends KilnService {
  readonly registry: DeviceRegistry;
}

/**
 * The one owner of the config dir: the device registry (scan, watcher, YAML reads and atomic
 * writes, StorageJSON reads) served on the bus as `DevicesService`, its changes published as
 * `DeviceChanged`. Build outputs of a deleted device go through the firmware service.
 */
export function createDevicesService(deps: ServiceDeps): DevicesService {
  const configDir = deps.config.core.configDir;
  const buildTree = busClient(deps.bus, firmwarePb.BuildTreeServiceDefinition, { timeoutMs: FORGET_BUILD_TIMEOUT_MS });
  const registry = new DeviceRegistry({
    configDir,
    forgetBuild: async (configuration, deviceName) => void (await buildTree.forgetBuild({ configuration, deviceName })),
  });
  let bindings: Disposable[] = [];
  return {
    name: DEVICES_SERVICE,
    registry,
    async start() {
      // The config dir is where devices live; a fresh install starts with an empty one.
      await mkdir(configDir, { recursive: true });
      // Published from the first scan on: a subscriber's snapshot (list) is taken after it listens.
      bindings = [publishDeviceEvents(deps.bus, registry, (err) => deps.logger.warn({ err }, 'could not publish a device change'))];
      await registry.start();
      bindings.push(...serveBus(deps.bus, devicesPb.DevicesServiceDefinition, new DevicesBusService(registry)));
      deps.logger.info({ configDir, devices: registry.list().length }, 'devices ready');
    },
    async stop() {
      disposeAll(bindings);
      bindings = [];
      registry.stop();
    },
    health: () => ({ ok: true, detail: { devices: String(registry.list().length) } }),
  };
}
