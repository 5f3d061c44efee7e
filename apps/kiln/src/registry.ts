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
    name: 'catalog',
    dependsOn: [],
    description: 'components, boards and automations (slim index + lazy bodies)',
    load: async () => (await import('@kiln/catalog')).createCatalogService,
  },
  {
    name: 'firmware',
    dependsOn: ['logstore'],
    description: 'compile and upload lanes, install chains (esphome toolchain)',
    load: async () => (await import('@kiln/firmware')).createFirmwareService,
  },
  {
    name: 'devices',
    dependsOn: [],
    description: 'the config dir: device registry, file watcher, YAML reads and atomic writes',
    load: async () => (await import('@kiln/devices')).createDevicesService,
  },
  {
    name: 'gateway',
    dependsOn: ['firmware', 'logstore', 'catalog', 'devices'],
    description: 'HTTP + WebSocket API (upstream device-builder protocol) and the web page',
    load: async () => {
      const [{ createGatewayService }, { webRoot }] = await Promise.all([import('@kiln/gateway'), import('@kiln/web')]);
      // The host knows where the built page is; the gateway (a service) never imports it.
      return (deps) => createGatewayService(deps, { defaultWebRoot: webRoot });
    },
  },
  {
    name: 'receiver',
    dependsOn: [],
    description: 'remote build receiver for paired offloaders (gRPC, pinned TLS; opt-in)',
    defaultHosted: false,
    load: async () => (await import('@kiln/receiver')).createReceiverService,
  },
];

export const serviceNames = serviceDefinitions.map((d) => d.name);
/** What `kiln supervise` hosts when --services is not given. */
export const defaultServiceNames = serviceDefinitions.filter((d) => d.defaultHosted !== false).map((d) => d.name);

/**
 * Workers: processes that execute jobs for a service elsewhere (`kiln worker <kind>`). They are not
 * services of `kiln supervise`: the firmware service runs compiles itself unless told to use workers.
 */
export const workerDefinitions: readonly ServiceDefinition[] = [
  {
    name: 'worker',
    dependsOn: [],
    description: 'compile executor for a firmware service with firmware.compileExecutor=workers (NATS)',
    load: async () => (await import('@kiln/firmware')).createCompileWorkerService,
  },
];
