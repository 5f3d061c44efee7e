import { intSetting, listenSetting, v } from '@kiln/config';

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
  /** Per-stream live queue bound (the stream helper's capacity). */
  streamCapacity: intSetting(4000, { min: 1, max: 1_000_000 }),
});

export type GatewaySettings = v.InferOutput<typeof gatewaySettingsSchema>;
