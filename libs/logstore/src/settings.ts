import { intSetting, listenSetting, v } from '@kiln/config';

/** The `logstore` config section. */
export const logStoreSettingsSchema = v.strictObject({
  /** Lines wait at most this long in memory before they are written (and announced). */
  flushIntervalMs: intSetting(50, { min: 1, max: 10_000 }),
  /**
   * Write as soon as this much is pending, and make appenders wait for that write: one syscall per
   * ~64 KiB keeps throughput near a plain write stream, and memory per log stays bounded.
   */
  flushBytes: intSetting(64 * 1024, { min: 1 }),
  /** A longer line (in characters) is cut with a marker: one runaway line must not cost megabytes. */
  maxLineLength: intSetting(64 * 1024, { min: 256 }),
  /**
   * gRPC endpoint host:port (port 0 picks a free one), or "off". Off by default: embedded, every
   * caller is in-process, and gRPC is the heaviest import; turn it on for remote followers.
   */
  grpcListen: listenSetting('off'),
});

export type LogStoreSettings = v.InferOutput<typeof logStoreSettingsSchema>;
