export * from './service.js';
export * from './codec.js';
export * from './subjects.js';
export * from './rpc.js';
export * from './logstore.js';
export * from './firmware.js';
export * as systemPb from './gen/kiln/system/v1/system.js';
export * as logStorePb from './gen/kiln/logstore/v1/logstore.js';
export * as firmwarePb from './gen/kiln/firmware/v1/firmware.js';
