import { intSetting, listenSetting, v } from '@kiln/config';

/** The `supervisor` config section. Defaults follow SPEC: backoff 1 s → 30 s, at most 5 restarts in 60 s. */
export const supervisorSettingsSchema = v.pipe(
  v.strictObject({
    /** First restart delay; doubles per consecutive crash. */
    restartInitialMs: intSetting(1_000, { min: 1 }),
    /** Backoff cap: a crash loop still retries twice a minute without hammering. */
    restartMaxMs: intSetting(30_000, { min: 1 }),
    /** Running this long without a crash forgets earlier crashes (backoff back to the start). */
    stableMs: intSetting(60_000, { min: 1 }),
    /** More restarts than this within restartWindowMs means the fault is not transient: exit non-zero for systemd. */
    maxRestarts: intSetting(5, { min: 0 }),
    restartWindowMs: intSetting(60_000, { min: 1 }),
    /** Per-service bounds; the sum stays under systemd's default TimeoutStopSec (90 s). */
    startTimeoutMs: intSetting(30_000, { min: 1 }),
    stopTimeoutMs: intSetting(10_000, { min: 1 }),
    /** Whole-process graceful shutdown bound; after it the process exits hard. */
    shutdownTimeoutMs: intSetting(30_000, { min: 1 }),
    heartbeatMs: intSetting(5_000, { min: 100 }),
    /** HTTP health endpoint, host:port (port 0 picks a free one); "off" disables it. */
    healthListen: listenSetting('127.0.0.1:7052'),
  }),
  v.check((s) => s.restartMaxMs >= s.restartInitialMs, 'restartMaxMs must be >= restartInitialMs'),
);

export type SupervisorSettings = v.InferOutput<typeof supervisorSettingsSchema>;
