import type { Bus } from '@kiln/bus';
import type { KilnConfig } from '@kiln/config';
import type { Logger } from '@kiln/logging';

/**
 * The contract between a host (supervise, serve) and a service. A service never knows whether it
 * runs alone or hosted: it gets a bus, its config, a logger, and a way to report a fatal failure.
 */
export interface ServiceDeps {
  readonly name: string;
  readonly bus: Bus;
  readonly config: KilnConfig;
  readonly logger: Logger;
  /** A failure the service cannot recover from: the host stops it and restarts it with backoff. */
  fail(error: unknown): void;
}

export interface ServiceHealth {
  ok: boolean;
  /** Key figures for status output, e.g. `{ openLogs: '3' }`. */
  detail?: Record<string, string>;
}

export interface KilnService {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  health(): ServiceHealth;
}

export type ServiceFactory = (deps: ServiceDeps) => KilnService;

/** How a host finds a service without importing it: the import happens in `load`, only when hosted. */
export interface ServiceDefinition {
  readonly name: string;
  readonly dependsOn: readonly string[];
  readonly description: string;
  /** Hosted by `kiln supervise` without `--services` (default true); a receiver is opt-in. */
  readonly defaultHosted?: boolean;
  load(): Promise<ServiceFactory>;
}
