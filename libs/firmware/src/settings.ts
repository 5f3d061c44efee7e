import { intSetting, v } from '@kiln/config';
import { WORKER_ID_PATTERN } from '@kiln/contracts';

/** The `firmware` config section. */
export const firmwareSettingsSchema = v.strictObject({
  /** The esphome CLI: a command on PATH or a path, optionally with arguments ("python3 -m esphome"). */
  toolchain: v.optional(v.pipe(v.string(), v.trim(), v.nonEmpty('must name the esphome command')), 'esphome'),
  /** Concurrent uploads: flashing is network/serial bound, one per device at a time is the safe default. */
  uploadSlots: intSetting(1, { min: 1, max: 16 }),
  /** SIGTERM → SIGKILL grace when a running job is cancelled. */
  killGraceMs: intSetting(5_000, { min: 0, max: 60_000 }),
  /** Finished clean/reset jobs kept in history (primary jobs keep the latest per configuration and type). */
  keepMaintenanceJobs: intSetting(5, { min: 0, max: 100 }),
  /** Output lines are shipped to the log store and the bus in batches at least this often. */
  outputBatchMs: intSetting(50, { min: 1, max: 5_000 }),
  /**
   * Where compile-lane jobs run: `local` (child processes of this service, one at a time) or
   * `workers` (`kiln worker compile` processes over NATS, one job per live worker).
   */
  compileExecutor: v.optional(v.picklist(['local', 'workers'], 'must be "local" or "workers"'), 'local'),
  /** A compile worker silent this long is lost (its job is re-run once, then failed). Five missed 1 s heartbeats. */
  workerTimeoutMs: intSetting(5_000, { min: 100, max: 300_000 }),
  /** Offloader: a compile whose receiver is lost mid-build moves to another receiver at most this often, then builds here. */
  maxRemoteRetries: intSetting(2, { min: 0, max: 10 }),
});

export type FirmwareSettings = v.InferOutput<typeof firmwareSettingsSchema>;

/** The `worker` config section of `kiln worker compile`. */
export const workerSettingsSchema = v.strictObject({
  /** The worker's name on the bus (one subject token). Default: `<hostname>-<pid>`. */
  id: v.optional(v.pipe(v.string(), v.trim(), v.regex(WORKER_ID_PATTERN, 'must be letters, digits, "-" or "_" (at most 64)'))),
  /** Heartbeat period; keep it well under the firmware service's `workerTimeoutMs`. */
  heartbeatMs: intSetting(1_000, { min: 50, max: 60_000 }),
});

export type WorkerSettings = v.InferOutput<typeof workerSettingsSchema>;
