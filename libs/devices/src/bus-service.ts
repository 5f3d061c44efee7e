import type { Bus } from '@kiln/bus';
import { devicesPb as pb, devicesSubjects, encode, type BusImplementation } from '@kiln/contracts';
import type { DeviceEvent, DeviceInfo } from './device-info.js';
import type { DeviceRegistry } from './registry.js';

/** `DevicesService` (devices.proto) over the registry: each method takes its request message. */
export class DevicesBusService implements BusImplementation<pb.DevicesServiceDefinition> {
  constructor(private readonly registry: DeviceRegistry) {}

  list(_request: pb.ListRequest = {}): pb.ListResponse {
    return { devices: this.registry.list().map(toPb) };
  }

  async getConfig({ configuration }: pb.GetConfigRequest): Promise<pb.GetConfigResponse> {
    return { content: await this.registry.getConfig(configuration) };
  }

  async updateConfig({ configuration, content }: pb.UpdateConfigRequest): Promise<pb.UpdateConfigResponse> {
    return { device: toPb(await this.registry.updateConfig(configuration, content)) };
  }

  async create({ name, platform, board, overwrite }: pb.CreateRequest): Promise<pb.CreateResponse> {
    const device = await this.registry.create({
      name,
      ...(platform !== undefined ? { platform } : {}),
      ...(board !== undefined ? { board } : {}),
      overwrite,
    });
    return { device: toPb(device) };
  }

  async delete({ configuration }: pb.DeleteRequest): Promise<pb.DeleteResponse> {
    await this.registry.delete(configuration);
    return {};
  }
}

/** Announce each registry change on `kiln.devices.event.changed` (the registry emits once the change is on disk and held). */
export function publishDeviceEvents(bus: Bus, registry: DeviceRegistry, onError: (err: unknown) => void): Disposable {
  return registry.onEvent((event) => {
    try {
      bus.publish(devicesSubjects.changed, encode(pb.DeviceChanged, changeOf(event)));
    } catch (err) {
      onError(err);
    }
  });
}

function changeOf(event: DeviceEvent): pb.DeviceChanged {
  if (event.type === 'device_removed') return { change: pb.DeviceChange.DEVICE_CHANGE_REMOVED, configuration: event.configuration };
  const change = event.type === 'device_added' ? pb.DeviceChange.DEVICE_CHANGE_ADDED : pb.DeviceChange.DEVICE_CHANGE_UPDATED;
  return { change, device: toPb(event.device), configuration: event.device.configuration };
}

function toPb(device: DeviceInfo): pb.Device {
  return { ...device };
}
