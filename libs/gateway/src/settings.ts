import { intSetting, listenSetting, v } from '@kiln/config';
import { DEFAULT_STREAM_CAPACITY, DEFAULT_STREAM_MAX_BYTES } from '@kiln/streams';

/** The `gateway` config section. */
export const gatewaySettingsSchema = v.strictObject({
  /** HTTP + WebSocket endpoint; ESPHome's dashboard port by default, loopback unless told otherwise. */
  listen: listenSetting('127.0.0.1:6052'),
  /** Largest client frame; bigger frames close the socket (a YAML config is far smaller). */
  maxMessageBytes: intSetting(1024 * 1024, { min: 1024, max: 64 * 1024 * 1024 }),
  /** Login for the WebSocket API (auth/login); unset = no login (trust whoever reaches the listen address). */
  password: v.optional(v.pipe(v.string(), v.minLength(8, 'must be at least 8 characters'))),
  username: v.optional(v.pipe(v.string(), v.minLength(1)), 'admin'),
  /** Directory of the built web page served at `/` (default: the one the host ships, `@kiln/web`). */
  webRoot: v.optional(v.pipe(v.string(), v.minLength(1, 'must not be empty'))),
  /** Per-stream live queue bound in events (the stream helper's capacity). */
  streamCapacity: intSetting(DEFAULT_STREAM_CAPACITY, { min: 1, max: 1_000_000 }),
  /** Per-stream live queue bound in bytes, counting what the client's socket holds: output past it is dropped. */
  streamMaxBytes: intSetting(DEFAULT_STREAM_MAX_BYTES, { min: 1024, max: 1024 * 1024 * 1024 }),
});

export type GatewaySettings = v.InferOutput<typeof gatewaySettingsSchema>;
