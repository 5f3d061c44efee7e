import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createInProcessBus, type Bus } from '@kiln/bus';
import { loadConfig } from '@kiln/config';
import { busClient, decodeOrThrow, devicesPb as pb, devicesSubjects, firmwarePb, serveBus, type BusImplementation } from '@kiln/contracts';
import { KilnError, removeBuildOutputs, resolveBuildPaths } from '@kiln/core';
import { createRootLogger } from '@kiln/logging';
import { createDevicesService, type DevicesService } from '../src/index.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function hosted(): Promise<{ bus: Bus; configDir: string; service: DevicesService; changes: pb.DeviceChanged[] }> {
  const root = await mkdtemp(join(tmpdir(), 'kiln-devices-service-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  const configDir = join(root, 'config');
  await mkdir(configDir);
  await writeFile(join(configDir, 'kitchen.yaml'), 'esphome:\n  name: kitchen\nesp32:\n  board: esp32dev\n');
  const config = await loadConfig({ env: { HOME: '/nonexistent' }, flags: [{ path: 'dataDir', value: join(root, 'data'), flag: '--data-dir' }, { path: 'configDir', value: configDir, flag: '--config-dir' }] });
  const bus = createInProcessBus();
  cleanups.push(() => bus.close());
  const changes: pb.DeviceChanged[] = [];
  bus.subscribe(devicesSubjects.changed, (msg) => void changes.push(decodeOrThrow(pb.DeviceChanged, msg.data, msg.subject)));
  const logger = await createRootLogger({ level: 'silent', pretty: false });
  const service = createDevicesService({ name: 'devices', bus, config, logger, fail: () => undefined });
  await service.start();
  cleanups.push(() => service.stop());
  return { bus, configDir, service, changes };
}

/** The firmware service's forget_build without its lanes (no jobs run in these tests). */
function serveForgetBuild(bus: Bus, configDir: string): void {
  const impl: BusImplementation<firmwarePb.BuildTreeServiceDefinition> = {
    forgetBuild: async ({ configuration, deviceName }) => (await removeBuildOutputs(resolveBuildPaths(configDir, configuration), deviceName), {}),
  };
  serveBus(bus, firmwarePb.BuildTreeServiceDefinition, impl);
}

describe('the devices service on the bus', () => {
  it('answers list, create, get_config, update_config and delete; errors keep their code and field', async () => {
    const { bus, configDir } = await hosted();
    serveForgetBuild(bus, configDir);
    const devices = busClient(bus, pb.DevicesServiceDefinition);
    expect((await devices.list({})).devices.map((d) => d.configuration)).toEqual(['kitchen.yaml']);
    const created = (await devices.create({ name: 'Garage Door', platform: 'esp8266' })).device!;
    expect(created).toMatchObject({ configuration: 'garage-door.yaml', name: 'garage-door', friendlyName: 'Garage Door', platform: 'esp8266', board: 'esp01_1m' });
    // Left-out platform and board: the defaults (esp32, its generic board).
    expect((await devices.create({ name: 'Attic' })).device).toMatchObject({ platform: 'esp32', board: 'esp32dev' });
    const { content } = await devices.getConfig({ configuration: 'garage-door.yaml' });
    expect(content).toMatch(/name: garage-door/);
    expect((await devices.updateConfig({ configuration: 'garage-door.yaml', content: content.replace('esp01_1m', 'nodemcuv2') })).device).toMatchObject({ board: 'nodemcuv2' });
    await expect(devices.updateConfig({ configuration: 'garage-door.yaml', content: 'esphome: [' })).rejects.toMatchObject({ code: 'invalid_args', details: { field: 'content' } });
    await expect(devices.getConfig({ configuration: '../secrets.yaml' })).rejects.toMatchObject({ code: 'invalid_args', details: { field: 'configuration' } });
    await expect(devices.create({ name: 'Garage Door' })).rejects.toMatchObject({ code: 'already_exists' });
    await devices.delete({ configuration: 'garage-door.yaml' });
    expect(existsSync(join(configDir, 'garage-door.yaml'))).toBe(false);
    expect((await devices.list({})).devices.map((d) => d.configuration)).toEqual(['attic.yaml', 'kitchen.yaml']);
  });

  it('publishes added, updated and removed once the file is on disk', async () => {
    const { bus, configDir, changes } = await hosted();
    serveForgetBuild(bus, configDir);
    // The first scan announces what it found (a subscriber that listened before the start learns of it).
    expect(changes).toMatchObject([{ change: pb.DeviceChange.DEVICE_CHANGE_ADDED, configuration: 'kitchen.yaml' }]);
    changes.length = 0;
    const onDisk: boolean[] = [];
    bus.subscribe(devicesSubjects.changed, () => void onDisk.push(existsSync(join(configDir, 'porch.yaml'))));
    const devices = busClient(bus, pb.DevicesServiceDefinition);
    await devices.create({ name: 'Porch' });
    await devices.updateConfig({ configuration: 'porch.yaml', content: 'esphome:\n  name: porch\n  friendly_name: Front Porch\n' });
    await devices.delete({ configuration: 'porch.yaml' });
    expect(changes.map((c) => [c.change, c.configuration, c.device?.friendlyName])).toEqual([
      [pb.DeviceChange.DEVICE_CHANGE_ADDED, 'porch.yaml', 'Porch'],
      [pb.DeviceChange.DEVICE_CHANGE_UPDATED, 'porch.yaml', 'Front Porch'],
      [pb.DeviceChange.DEVICE_CHANGE_REMOVED, 'porch.yaml', undefined],
    ]);
    expect(onDisk).toEqual([true, true, false]);
  });

  it('without a firmware service a delete removes the YAML and the device, then fails unavailable (the build is not touched)', async () => {
    const { bus, configDir, changes } = await hosted();
    const build = join(configDir, '.esphome/build/kitchen/firmware.bin');
    await mkdir(join(build, '..'), { recursive: true });
    await writeFile(build, 'bin');
    const devices = busClient(bus, pb.DevicesServiceDefinition);
    const err = await devices.delete({ configuration: 'kitchen.yaml' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KilnError);
    expect((err as KilnError).code).toBe('unavailable');
    expect(existsSync(join(configDir, 'kitchen.yaml'))).toBe(false);
    expect(existsSync(build)).toBe(true);
    expect((await devices.list({})).devices).toEqual([]);
    expect(changes.at(-1)).toMatchObject({ change: pb.DeviceChange.DEVICE_CHANGE_REMOVED, configuration: 'kitchen.yaml' });
  });
});
