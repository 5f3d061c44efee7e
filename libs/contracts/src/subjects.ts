/**
 * Every bus subject Kiln uses, in one place: request/reply subjects of the bus services declared in
 * proto (derived from BUS_SERVICE_SUBJECTS below), events `kiln.<service>.<event>`, and
 * `kiln.system.<service>.(control|health)` for the supervisor.
 */

/**
 * Where a bus service's methods live: `<base>.<snake_case method>` (e.g. FirmwareService.InstallBulk
 * → `kiln.firmware.install_bulk`), unless `methods` names the subject after the base (upstream's
 * command names that are not one word). `{scope}` in a base is a single subject token given when the
 * service is bound (a worker id, a job id, a service name).
 */
export interface BusServiceSubjects {
  readonly base: string;
  readonly methods?: Readonly<Record<string, string>>;
}

/** Keyed by the proto service's full name. Subject strings are wire contracts: never change one. */
export const BUS_SERVICE_SUBJECTS: Readonly<Record<string, BusServiceSubjects>> = {
  'kiln.firmware.v1.FirmwareService': { base: 'kiln.firmware' },
  'kiln.firmware.v1.BuildTreeService': { base: 'kiln.firmware' },
  'kiln.firmware.v1.RemoteJobService': { base: 'kiln.firmware.offloader' },
  'kiln.remote.v1.OffloaderService': { base: 'kiln.firmware.offloader' },
  'kiln.remote.v1.ReceiverControlService': { base: 'kiln.receiver' },
  'kiln.devices.v1.DevicesService': { base: 'kiln.devices' },
  'kiln.logstore.v1.LogStoreService': { base: 'kiln.logstore', methods: { CloseLog: 'close' } },
  'kiln.catalog.v1.CatalogService': {
    base: 'kiln.catalog',
    methods: {
      GetComponents: 'components.get_components',
      GetComponentBodies: 'components.get_component_bodies',
      GetCategories: 'components.get_categories',
      GetIntegrationDocs: 'components.get_integration_docs',
      GetPinRegistryModes: 'components.get_pin_registry_modes',
      GetBoards: 'boards.get_boards',
      GetBoard: 'boards.get_board',
      GetCompatibleBoards: 'boards.get_compatible_boards',
      GetAutomations: 'automations.get',
      GetAutomationBodies: 'automations.get_bodies',
      GetInfo: 'info',
    },
  },
  'kiln.firmware.v1.WorkerService': { base: 'kiln.firmware.worker.{scope}' },
  'kiln.firmware.v1.WorkerJobService': { base: 'kiln.firmware.worker.job.{scope}' },
  'kiln.system.v1.ServiceControlService': { base: 'kiln.system.{scope}' },
};

const snakeCase = (method: string): string => method.replace(/(?<=[a-z0-9])(?=[A-Z])/g, '_').toLowerCase();

/**
 * The subject of `method` (its proto name, e.g. `InstallBulk`) of the service `serviceFullName`.
 * Throws for a service missing from the table or a scoped one bound without its scope.
 */
export function busMethodSubject(serviceFullName: string, method: string, scope?: string): string {
  const entry = BUS_SERVICE_SUBJECTS[serviceFullName];
  if (!entry) throw new Error(`bus service ${serviceFullName} has no entry in BUS_SERVICE_SUBJECTS`);
  const scoped = entry.base.includes('{scope}');
  if (scoped !== (scope !== undefined)) {
    throw new Error(scoped ? `bus service ${serviceFullName} needs a scope (${entry.base})` : `bus service ${serviceFullName} takes no scope`);
  }
  const base = scope === undefined ? entry.base : entry.base.replace('{scope}', scope);
  return `${base}.${entry.methods?.[method] ?? snakeCase(method)}`;
}

// ---- events (publish/subscribe) ----

export const systemSubjects = {
  health: (service: string) => `kiln.system.${service}.health`,
  allHealth: 'kiln.system.*.health',
} as const;

export const logStoreSubjects = {
  lines: (jobId: string) => `kiln.logstore.lines.${jobId}`,
  /** Every job's committed lines (the one publish of each output batch). */
  allLines: 'kiln.logstore.lines.*',
  closed: (jobId: string) => `kiln.logstore.closed.${jobId}`,
  deleted: (jobId: string) => `kiln.logstore.deleted.${jobId}`,
} as const;

export const FIRMWARE_EVENTS = ['queued', 'started', 'completed', 'failed', 'cancelled', 'progressed', 'cleared'] as const;
export type FirmwareEventName = (typeof FIRMWARE_EVENTS)[number];

/** Job events on `kiln.firmware.job.<event>`. */
export const firmwareSubjects = {
  event: (name: FirmwareEventName) => `kiln.firmware.job.${name}`,
  allEvents: 'kiln.firmware.job.>',
} as const;

/** Compile workers announce themselves (WorkerHeartbeat) and their shutdown (WorkerStopped). */
export const firmwareWorkerSubjects = {
  heartbeat: 'kiln.firmware.worker.heartbeat',
  stopped: 'kiln.firmware.worker.stopped',
} as const;

export const devicesSubjects = {
  /** DeviceChanged (added, updated, removed), published once the registry holds the change. */
  changed: 'kiln.devices.event.changed',
} as const;

export const receiverSubjects = {
  /** ReceiverChanged, published after the change is persisted (pairing window, peers, identity). */
  changed: 'kiln.receiver.event.changed',
} as const;

export const offloaderSubjects = {
  /**
   * OffloaderSettingsResponse (what get_offloader_settings answers), published after a change of the
   * settings or pairings is persisted, and when a receiver becomes eligible or ineligible.
   */
  changed: 'kiln.firmware.offloader.event.changed',
} as const;
