import type { ServiceDefinition } from '@kiln/contracts';

/**
 * Every service this build can host. Nothing here imports a service: `load` does, and only
 * for the services a host is asked to run.
 */
export const serviceDefinitions: readonly ServiceDefinition[] = [
  {
    name: 'logstore',
    dependsOn: [],
    description: 'append-only per-job build logs (bus + gRPC)',
    load: async () => (await import('@kiln/logstore')).createLogStoreService,
  },
  {
    name: 'firmware',
    dependsOn: ['logstore'],
    description: 'compile and upload lanes, install chains (esphome toolchain)',
    load: async () => (await import('@kiln/firmware')).createFirmwareService,
  },
  {
    name: 'gateway',
    dependsOn: ['firmware', 'logstore'],
    description: 'HTTP + WebSocket API (upstream device-builder protocol)',
    load: async () => (await import('@kiln/gateway')).createGatewayService,
  },
];

export const serviceNames = serviceDefinitions.map((d) => d.name);
