export * from './supervisor.js';
export * from './settings.js';
export * from './events.js';
export * from './health-server.js';
export { currentService, runInService, type ServiceContext } from './attribution.js';
export { RestartBackoff } from './backoff.js';
export { startOrder } from './order.js';
export type { RunnerStatus } from './runner.js';
export { startSystemdNotifier, type SystemdNotifier, type SystemdNotifierOptions } from './systemd-notify.js';
