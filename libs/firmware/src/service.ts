import { join } from 'node:path';
import { createLogStoreBusClient, encode, firmwarePb, offloaderSubjects, remotePb, serveBus, type KilnService, type ServiceDeps } from '@kiln/contracts';
import { disposeAll, systemClock } from '@kiln/core';
import { FirmwareCore } from './firmware-core.js';
import { firmwareSettingsSchema } from './settings.js';
import { Toolchain, toolchainCommand } from '@kiln/toolchain';
import { WorkerPoolExecutor } from './executors/worker-pool.js';
import { LocalExecutor } from './executors/local-executor.js';
import { firmwareRunningGroups } from './persistence/running-groups.js';
import { OffloadExecutor } from './executors/offload-executor.js';
import { Offloader } from './offloader/offloader.js';
import { OffloaderSettingsStore } from './offloader/settings-store.js';

export const FIRMWARE_SERVICE = 'firmware';

export interface FirmwareService extends KilnService {
  readonly core: FirmwareCore;
  readonly offloader: Offloader;
}

/** The firmware lanes as a service: commands on the bus, output to the log store over the bus. */
export function createFirmwareService(deps: ServiceDeps): FirmwareService {
  const settings = deps.config.section(FIRMWARE_SERVICE, firmwareSettingsSchema);
  const toolchain = new Toolchain({ command: toolchainCommand(settings.toolchain, (path) => deps.config.resolvePath(path)), killGraceMs: settings.killGraceMs });
  // Compile workers over the bus; `local` (the default) runs compiles as children of this process.
  const base =
    settings.compileExecutor === 'workers'
      ? new WorkerPoolExecutor({ bus: deps.bus, logger: deps.logger, clock: systemClock, timeoutMs: settings.workerTimeoutMs })
      : new LocalExecutor(toolchain, deps.config.core.configDir, 1, firmwareRunningGroups(deps.config.core.dataDir));
  // Paired receivers join the compile lane through this executor (see Offloader); without any it is `base`.
  const offloaderDir = join(deps.config.core.dataDir, 'offloader');
  const offloaderSettings = new OffloaderSettingsStore(offloaderDir);
  const compileExecutor = new OffloadExecutor({ base, settings: () => offloaderSettings.settings, maxRemoteRetries: settings.maxRemoteRetries, logger: deps.logger, clock: systemClock });
  const offloader = new Offloader({ dir: offloaderDir, settings: offloaderSettings, configDir: deps.config.core.configDir, executor: compileExecutor, logger: deps.logger, clock: systemClock });
  const core = new FirmwareCore({
    dataDir: deps.config.core.dataDir,
    configDir: deps.config.core.configDir,
    settings,
    toolchain,
    compileExecutor,
    logs: createLogStoreBusClient(deps.bus),
    bus: deps.bus,
    logger: deps.logger,
    clock: systemClock,
  });
  let bindings: Disposable[] = [];
  return {
    name: FIRMWARE_SERVICE,
    core,
    offloader,
    async start() {
      await core.compileExecutor.start();
      offloader.onChange((view) => {
        try {
          deps.bus.publish(offloaderSubjects.changed, encode(remotePb.OffloaderSettingsResponse, view));
        } catch (err) {
          deps.logger.warn({ err }, 'could not publish an offloader change');
        }
      });
      await offloader.start();
      await core.restore();
      bindings = [
        ...serveBus(deps.bus, firmwarePb.FirmwareServiceDefinition, core),
        ...serveBus(deps.bus, firmwarePb.BuildTreeServiceDefinition, core),
        ...serveBus(deps.bus, remotePb.OffloaderServiceDefinition, offloader),
        // Builds sent to one receiver: ordinary compile-lane jobs pinned to it.
        ...serveBus(deps.bus, firmwarePb.RemoteJobServiceDefinition, core),
      ];
      deps.logger.info({ toolchain: settings.toolchain, configDir: deps.config.core.configDir, compileExecutor: settings.compileExecutor }, 'firmware lanes ready');
    },
    async stop() {
      disposeAll(bindings);
      bindings = [];
      offloader.onChange(undefined);
      await core.stop();
      await offloader.stop();
      await core.compileExecutor.stop();
    },
    health: () => ({ ok: true, detail: { running: String(core.runningCount), compileExecutor: core.compileExecutor.kind, ...core.compileExecutor.detail() } }),
  };
}
