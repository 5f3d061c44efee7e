export { createDevicesService, DEVICES_SERVICE, type DevicesService } from './service.js';
export { DevicesBusService } from './bus-service.js';
export { DeviceRegistry, type DeviceRegistryOptions } from './registry.js';
export type { DeviceInfo, DeviceEvent } from './device-info.js';
export type { CreateArgs } from './create.js';
export { KNOWN_PLATFORMS, type Platform } from './platforms.js';
export { slugify } from './create.js';
