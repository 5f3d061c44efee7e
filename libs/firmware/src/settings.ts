import { intSetting, v } from '@kiln/config';

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
});

export type FirmwareSettings = v.InferOutput<typeof firmwareSettingsSchema>;
