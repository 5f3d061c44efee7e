export { DeviceRegistry, type DeviceRegistryOptions } from './registry.js';
export type { DeviceInfo, DeviceEvent } from './device-info.js';
export type { CreateArgs } from './create.js';
export { KNOWN_PLATFORMS, type Platform } from './platforms.js';
export { slugify } from './create.js';
