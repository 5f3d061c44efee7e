import { connectNatsBus, createInProcessBus, type Bus } from '@kiln/bus';
import { loadConfig } from '@kiln/config';
import type { ServiceDefinition } from '@kiln/contracts';
import { deferred, KilnError } from '@kiln/core';
import { createRootLogger, type Logger } from '@kiln/logging';
import { startHealthServer, startSystemdNotifier, Supervisor, supervisorSettingsSchema, type HealthServer, type SupervisorEvent } from '@kiln/supervisor';
import type { ParsedHostArgs } from './args.js';
import { serviceDefinitions, serviceNames, workerDefinitions } from './registry.js';
import { claimRunFile } from './run-file.js';

export interface HostOptions {
  /** `supervise` or `serve-<service>`: names the run file and the log lines. */
  host: string;
  args: ParsedHostArgs;
  /** Services to run when --services is not given. */
  defaultServices: readonly string[];
  /** What this host can run (default: the registry's services; `kiln worker` passes the workers). */
  definitions?: readonly ServiceDefinition[];
  requireNats: boolean;
  /** The command as typed, for messages (default: from `host`, e.g. `serve firmware`). */
  command?: string;
}

/**
 * Run services in this process until SIGTERM/SIGINT. Graceful stop is bounded by
 * supervisor.shutdownTimeoutMs; a second signal, or the bound running out, exits at once.
 */
export async function runHost(options: HostOptions): Promise<number> {
  const config = await loadConfig({ flags: options.args.flags, ...(options.args.configFile ? { configFile: options.args.configFile } : {}) });
  const definitions = options.definitions ?? serviceDefinitions;
  // One config file serves every host of an installation: each accepts the sections of every service and worker.
  const sections = ['supervisor', ...new Set([...serviceNames, ...workerDefinitions.map((d) => d.name)])];
  const unknown = config.unknownKeys(sections);
  if (unknown.length > 0) {
    throw new KilnError('invalid_args', `unknown setting section(s): ${unknown.join(', ')} (known: ${sections.join(', ')})`, { field: 'config', value: unknown });
  }
  const settings = config.section('supervisor', supervisorSettingsSchema);
  const hosted = options.args.services ?? [...options.defaultServices];
  const logger = await createRootLogger({ level: config.core.logLevel, base: { host: options.host } });
  if (options.requireNats && !config.core.nats) {
    throw new KilnError('invalid_args', `kiln ${options.command ?? options.host.replace('-', ' ')} needs NATS: pass --nats nats://host:4222 or set KILN_NATS`, { field: 'nats', value: null });
  }
  // A throwing bus handler runs in its subscriber's async context: charge it to that service.
  let attribute: (error: unknown) => boolean = () => false;
  const onHandlerError = (error: unknown, subject: string): void => {
    if (!attribute(error)) logger.error({ err: error, subject }, 'bus handler failed outside every service');
  };
  const bus: Bus = config.core.nats
    ? await connectNatsBus({ servers: config.core.nats, name: `kiln-${options.host}`, onHandlerError, ...(config.core.natsPrefix ? { prefix: config.core.natsPrefix } : {}) })
    : createInProcessBus({ onHandlerError });

  let exitCode = 0;
  let shuttingDown: Promise<void> | undefined;
  const supervisor = new Supervisor({
    definitions,
    hosted,
    settings,
    bus,
    config,
    logger,
    onFatal: (error) => {
      logger.fatal({ err: error }, 'a service exceeded its restart limit; exiting so the service manager can take over');
      exitCode = 1;
      void shutdown('restart limit');
    },
  });
  attribute = (error) => supervisor.attributeFailure(error);
  supervisor.onEvent((event) => logEvent(logger, event));
  // Under systemd (Type=notify): READY=1 once every service runs, watchdog pings, STOPPING=1.
  const notifier = startSystemdNotifier({ onError: (err, message) => logger.warn({ err, message }, 'systemd-notify failed') });
  supervisor.onEvent((event) => {
    if (event.type === 'ready') void notifier?.ready(`${supervisor.serviceNames.join(', ')} running`);
  });
  const hooks = supervisor.installProcessHooks((error) => {
    logger.fatal({ err: error }, 'uncaught failure outside every service');
    exitCode = 1;
    void shutdown('unattributed failure');
  });

  const dataDir = config.core.dataDir;
  const runFile = { pid: process.pid, host: options.host, services: supervisor.serviceNames, startedAt: new Date().toISOString(), bus: bus.kind };
  const releaseRunFile = await claimRunFile(dataDir, { ...runFile, healthUrl: undefined });
  let health: HealthServer | undefined;
  const stopped = deferred<void>();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (shuttingDown) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    void shutdown(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  function shutdown(reason: string): Promise<void> {
    shuttingDown ??= (async () => {
      logger.info({ reason }, 'stopping');
      void notifier?.stopping();
      const hardExit = setTimeout(() => {
        logger.error({ timeoutMs: settings.shutdownTimeoutMs }, 'graceful stop took too long: exiting now');
        process.exit(1);
      }, settings.shutdownTimeoutMs);
      hardExit.unref();
      await supervisor.stop();
      await health?.close();
      await releaseRunFile();
      await bus.close();
      hooks[Symbol.dispose]();
      notifier?.[Symbol.dispose]();
      clearTimeout(hardExit);
      logger.info('stopped');
      stopped.resolve();
    })();
    return shuttingDown;
  }

  if (settings.healthListen !== 'off') {
    try {
      health = await startHealthServer(supervisor, settings.healthListen);
      await claimRunFile(dataDir, { ...runFile, healthUrl: health.url });
    } catch (err) {
      await shutdown('health endpoint failed');
      throw err;
    }
  }
  logger.info({ services: supervisor.serviceNames, dataDir, bus: bus.kind, health: health?.url }, 'starting');
  try {
    await supervisor.start();
  } catch (err) {
    logger.fatal({ err }, 'start failed');
    exitCode = 1;
    await shutdown('start failed');
    // A misconfigured service is the user's to fix: surface the setting's error as the command's error.
    const cause = (err as { cause?: unknown }).cause;
    if (cause instanceof KilnError && cause.code === 'invalid_args') throw cause;
  }
  await stopped.promise;
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  return exitCode;
}

function logEvent(logger: Logger, event: SupervisorEvent): void {
  switch (event.type) {
    case 'ready':
      return logger.info('all services running (ready)');
    case 'started':
      return logger.info({ service: event.service, run: event.run }, 'service started');
    case 'stopped':
      return logger.info({ service: event.service, held: event.held }, 'service stopped');
    case 'crashed':
      return logger.error({ service: event.service, run: event.run, err: event.error }, 'service crashed');
    case 'backoff':
      return logger.warn({ service: event.service, delayMs: event.delayMs, restarts: event.restarts }, 'restarting after backoff');
    case 'gave_up':
      return logger.fatal({ service: event.service, restartsInWindow: event.restartsInWindow }, 'service keeps failing');
    case 'stop_timeout':
      return logger.warn({ service: event.service, timeoutMs: event.timeoutMs }, 'service did not stop in time');
    case 'stale_failure':
      return logger.warn({ service: event.service, run: event.run, err: event.error }, 'failure from a stopped run ignored');
    case 'unattributed_failure':
    case 'starting':
      return;
  }
}
