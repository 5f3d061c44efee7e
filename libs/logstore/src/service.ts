import { join } from 'node:path';
import type { KilnService, ServiceDeps } from '@kiln/contracts';
import { disposeAll } from '@kiln/core';
import { busEventsFor, serveLogStoreOnBus } from './bus-binding.js';
import type { GrpcEndpoint } from './grpc-server.js';
import { LogStore } from './log-store.js';
import { logStoreSettingsSchema } from './settings.js';

export const LOGSTORE_SERVICE = 'logstore';

/** `<data_dir>/job-logs/`: one append-only file per job. */
export function jobLogsDir(dataDir: string): string {
  return join(dataDir, 'job-logs');
}

export interface LogStoreService extends KilnService {
  /** The in-process store (same contract as the bus and gRPC clients). */
  readonly store: LogStore;
  /** Bound gRPC address once started, when enabled. */
  readonly grpcAddress: string | undefined;
}

export function createLogStoreService(deps: ServiceDeps): LogStoreService {
  const settings = deps.config.section(LOGSTORE_SERVICE, logStoreSettingsSchema);
  const store = new LogStore(jobLogsDir(deps.config.core.dataDir), settings, deps.logger, busEventsFor(deps.bus));
  let bindings: Disposable[] = [];
  let grpc: GrpcEndpoint | undefined;
  return {
    name: LOGSTORE_SERVICE,
    store,
    get grpcAddress() {
      return grpc?.address;
    },
    async start() {
      await store.init();
      bindings = serveLogStoreOnBus(deps.bus, store);
      if (settings.grpcListen !== 'off') {
        // gRPC is imported only when enabled: it is the heaviest module here.
        const { startLogStoreGrpc } = await import('./grpc-server.js');
        grpc = await startLogStoreGrpc(store, settings.grpcListen, deps.logger);
      }
      deps.logger.info({ dir: store.dir, grpc: grpc?.address ?? 'off' }, 'log store ready');
    },
    async stop() {
      disposeAll(bindings);
      bindings = [];
      await grpc?.close();
      grpc = undefined;
      await store.closeAll();
    },
    health: () => ({
      ok: true,
      detail: { openLogs: String(store.openCount), followers: String(store.followerCount()), grpc: grpc?.address ?? 'off' },
    }),
  };
}
