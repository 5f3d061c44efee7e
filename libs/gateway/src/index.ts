export * from './service.js';
export * from './settings.js';
export { CLOSE_BACKPRESSURE } from './ws/connection.js';
export { GatewayClient, type Frame } from './client.js';
