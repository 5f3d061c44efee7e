import { hostname } from 'node:os';
import { intSetting, listenSetting, v } from '@kiln/config';
import { isDisplayName } from '@kiln/core';

/** The `receiver` config section. */
export const receiverSettingsSchema = v.strictObject({
  /** gRPC (TLS, pinned both ways) host:port; port 0 picks a free one. Offloaders reach it over the LAN. */
  grpcListen: listenSetting('0.0.0.0:7054'),
  /** The name offloaders see when they preview this receiver. */
  name: v.optional(v.pipe(v.string(), v.trim(), v.check((s: string) => isDisplayName(s), 'must be 1-64 characters without control characters')), hostname()),
  /** How long an opened pairing window stays open unless closed earlier (it starts closed). */
  pairingWindowS: intSetting(300, { min: 10, max: 86_400 }),
  /**
   * A headless receiver's one-shot pairing key: a file whose (trimmed) content is the key. It is
   * accepted once, within `pairingKeyTtlS` of the file's last change, and the file is removed on use.
   */
  pairingKeyFile: v.optional(v.string(), ''),
  pairingKeyTtlS: intSetting(3_600, { min: 10, max: 30 * 86_400 }),
  /** The esphome CLI: a command on PATH or a path, optionally with arguments. */
  toolchain: v.optional(v.pipe(v.string(), v.trim(), v.nonEmpty('must name the esphome command')), 'esphome'),
  /** Concurrent remote compiles (the only lane a receiver offers). */
  compileSlots: intSetting(1, { min: 1, max: 16 }),
  killGraceMs: intSetting(5_000, { min: 0, max: 60_000 }),
  /** A bundle (compressed) larger than this is refused while it arrives. */
  maxBundleBytes: intSetting(32 * 1024 * 1024, { min: 1024 }),
  /** Uncompressed bundle contents larger than this are refused (a gzip bomb stops here). */
  maxExtractedBytes: intSetting(256 * 1024 * 1024, { min: 1024 }),
  /** Files per bundle: a config dir holds a handful, a million empty entries is an attack. */
  maxBundleEntries: intSetting(10_000, { min: 1 }),
  /** A build's artifacts adding up to more than this are not served. */
  maxArtifactBytes: intSetting(64 * 1024 * 1024, { min: 1024 }),
  /** A build dir untouched this long is removed by the sweep (never while a build runs in it). */
  buildDirTtlS: intSetting(7 * 86_400, { min: 1 }),
  sweepIntervalS: intSetting(3_600, { min: 1 }),
  /** Finished builds kept for follow/download; older ones are forgotten (their files stay until the sweep). */
  keepFinishedBuilds: intSetting(200, { min: 1 }),
  /** Status heartbeat on the session stream: an offloader that hears nothing for a few of these treats the receiver as lost. */
  heartbeatMs: intSetting(5_000, { min: 50, max: 60_000 }),
});

export type ReceiverSettings = v.InferOutput<typeof receiverSettingsSchema>;
