export * from './service.js';
export * from './settings.js';
export { LogStore, type LogStoreEvents } from './log-store.js';
export { MAX_BUS_PAYLOAD_BYTES, splitBatch } from './bus-binding.js';
