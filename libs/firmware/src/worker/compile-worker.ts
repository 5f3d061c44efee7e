import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { busClient, encode, firmwareWorkerPb as wpb, firmwareWorkerSubjects, serveBus, type KilnService, type ServiceDeps } from '@kiln/contracts';
import { assertConfigurationName, assertSafeId, disposeAll, KilnError, toKilnError } from '@kiln/core';
import { Toolchain, toolchainCommand, type ToolchainExit, type ToolchainProcess } from '@kiln/toolchain';
import { FIRMWARE_SERVICE } from '../service.js';
import { firmwareSettingsSchema, workerSettingsSchema } from '../settings.js';
import { startToolchainJob, type ExecutorRequest } from '../executors/executor.js';
import { OutputSender } from './output-sender.js';

export const COMPILE_WORKER_SERVICE = 'worker';

/** How long the worker waits for the firmware service to take a batch: the log store may be busy, a dead owner never answers. */
const OWNER_TIMEOUT_MS = 60_000;
const OUTPUT_BATCH_MS = 50;

interface CurrentJob {
  request: ExecutorRequest;
  process: ToolchainProcess | undefined;
  /** The firmware service asked to cancel it: terminate the tree, still report the exit. */
  cancelled: boolean;
  /** No longer reported (worker stopping, or nobody takes its output any more). */
  abandoned: boolean;
  done: Promise<void>;
}

/**
 * `kiln worker compile`: runs compile-lane jobs handed to it by the firmware service (which alone owns
 * the queue) through the same Toolchain as local compiles, one job at a time, streaming its output
 * and exit back. It reads the device YAML and writes build dirs in the config dir, so it must see the
 * same config dir (same path) as the firmware service.
 */
export function createCompileWorkerService(deps: ServiceDeps): KilnService {
  const firmware = deps.config.section(FIRMWARE_SERVICE, firmwareSettingsSchema);
  const settings = deps.config.section(COMPILE_WORKER_SERVICE, workerSettingsSchema);
  const workerId = settings.id ?? `${hostname().replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40)}-${process.pid}`;
  const instance = randomUUID();
  const configDir = deps.config.core.configDir;
  const toolchain = new Toolchain({ command: toolchainCommand(firmware.toolchain, (path) => deps.config.resolvePath(path)), killGraceMs: firmware.killGraceMs });
  const { bus, logger } = deps;
  let current: CurrentJob | undefined;
  let bindings: Disposable[] = [];
  let heartbeat: NodeJS.Timeout | undefined;
  let jobsRun = 0;

  const beat = (): void =>
    bus.publish(
      firmwareWorkerSubjects.heartbeat,
      encode(wpb.WorkerHeartbeat, { workerId, instance, jobId: current?.request.jobId ?? '', intervalMs: settings.heartbeatMs, pid: process.pid, host: hostname() }),
    );

  async function execute(job: CurrentJob): Promise<void> {
    const { jobId } = job.request;
    let exit: ToolchainExit;
    try {
      const proc = await startToolchainJob(toolchain, configDir, job.request);
      job.process = proc;
      if (job.abandoned || job.cancelled) void proc.terminate();
      const sender = new OutputSender(bus, jobId, OUTPUT_BATCH_MS, OWNER_TIMEOUT_MS);
      for await (const line of proc.lines) {
        if (job.abandoned) continue; // drain: the tree is being terminated
        await sender.push(line);
        if (sender.failure) {
          // Nobody takes this job's output any more (the firmware service moved on or is gone): stop building it.
          logger.warn({ jobId, err: sender.failure }, 'the firmware service no longer takes this job; terminating it');
          job.abandoned = true;
          void proc.terminate();
        }
      }
      await sender.flush();
      exit = await proc.exited;
    } catch (err) {
      exit = { exitCode: null, signal: null, error: toKilnError(err) };
    }
    if (job.abandoned) return;
    try {
      await busClient(bus, wpb.WorkerJobServiceDefinition, { scope: jobId, timeoutMs: OWNER_TIMEOUT_MS }).exited({
        jobId,
        ...(exit.exitCode === null ? {} : { exitCode: exit.exitCode }),
        signal: exit.signal ?? '',
        errorCode: exit.error?.code ?? '',
        errorMessage: exit.error?.message ?? '',
      });
    } catch (err) {
      logger.warn({ jobId, err }, 'could not report the end of a job to the firmware service');
    }
  }

  function accept(request: wpb.WorkerRunRequest): wpb.WorkerRunReply {
    if (current) throw new KilnError('failed_precondition', `compile worker ${workerId} is busy with job ${current.request.jobId}`, { worker: workerId, job_id: current.request.jobId });
    assertSafeId('job_id', request.jobId);
    const job: CurrentJob = {
      request: { jobId: request.jobId, configuration: assertConfigurationName('configuration', request.configuration), type: request.type, port: request.port, newName: request.newName },
      process: undefined,
      cancelled: false,
      abandoned: false,
      done: Promise.resolve(),
    };
    current = job;
    jobsRun++;
    logger.info({ jobId: request.jobId, configuration: request.configuration }, 'job accepted');
    job.done = execute(job)
      .catch((err: unknown) => logger.error({ err, jobId: request.jobId }, 'compile worker job failed'))
      .finally(() => {
        if (current === job) current = undefined;
        if (heartbeat) beat(); // idle again: say so at once
      });
    return { workerId, instance };
  }

  return {
    name: COMPILE_WORKER_SERVICE,
    async start() {
      bindings = serveBus(
        bus,
        wpb.WorkerServiceDefinition,
        {
          run: accept,
          cancel: async (r) => {
            const job = current;
            if (!job || job.request.jobId !== r.jobId) return { found: false };
            // Answer at once: the tree's SIGTERM→SIGKILL grace may outlast the caller's deadline; the exit follows.
            job.cancelled = true;
            void job.process?.terminate();
            return { found: true };
          },
        },
        { scope: workerId },
      );
      heartbeat = setInterval(beat, settings.heartbeatMs);
      beat();
      logger.info({ workerId, configDir, toolchain: firmware.toolchain }, 'compile worker ready');
    },
    async stop() {
      clearInterval(heartbeat);
      heartbeat = undefined;
      // Announce first: the firmware service re-runs the job elsewhere instead of waiting for a timeout.
      bus.publish(firmwareWorkerSubjects.stopped, encode(wpb.WorkerStopped, { workerId, instance }));
      disposeAll(bindings);
      bindings = [];
      const job = current;
      if (job) {
        job.abandoned = true;
        await job.process?.terminate();
        await job.done;
      }
    },
    health: () => ({ ok: true, detail: { workerId, job: current?.request.jobId ?? '', jobsRun: String(jobsRun) } }),
  };
}
