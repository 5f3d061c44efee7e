import { createHash } from 'node:crypto';
import { firmwarePb, remotePb as pb } from '@kiln/contracts';
import { DISPLAY_NAME_MAX, isDisplayName, KilnError } from '@kiln/core';
import { artifactChunks } from '../download.js';
import { arg, parseArgs, v } from './args.js';
import { jobToJson } from './job-json.js';
import type { CommandHandler } from './types.js';

/** Preview and pair talk to the receiver over the network (a TLS probe, then gRPC): more than a bus hop. */
const PAIRING_CALL_MS = 20_000;

const iso = (ms: number): string | null => (ms > 0 ? new Date(ms).toISOString() : null);

export const peerToJson = (peer: pb.Peer) => ({
  dashboard_id: peer.dashboardId,
  name: peer.name,
  pin_sha256: peer.fingerprint,
  status: peer.state === pb.PairState.PAIR_STATE_APPROVED ? 'approved' : 'pending',
  requested_at: iso(peer.requestedAtMs),
  approved_at: iso(peer.approvedAtMs),
});

export const identityToJson = (id: pb.GetIdentityResponse) => ({
  dashboard_id: id.dashboardId,
  name: id.name,
  pin_sha256: id.fingerprint,
  address: id.address,
  listener_bound: id.address !== '',
  pairing_open: id.pairingOpen,
  pairing_closes_at: iso(id.pairingClosesAtMs),
  peers: id.peers.map(peerToJson),
});

/** `remote_build_pairing_window_changed`: the window as get_identity shows it. */
export const pairingWindowToJson = (id: pb.GetIdentityResponse) => ({ pairing_open: id.pairingOpen, pairing_closes_at: iso(id.pairingClosesAtMs) });

/** `remote_build_pair_status_changed`: the peer as get_identity lists it; status `removed` once it is gone. */
export const pairStatusToJson = (peer: pb.Peer, removed: boolean) => ({ ...peerToJson(peer), ...(removed ? { status: 'removed' as const } : {}) });

const pairingToJson = (p: pb.OffloaderPairing) => ({
  dashboard_id: p.dashboardId,
  label: p.name,
  hostname: p.hostname,
  port: p.port,
  pin_sha256: p.pinSha256,
  enabled: p.enabled,
  paired_at: iso(p.pairedAtMs),
  eligible: p.eligible,
});

export const offloaderToJson = (r: pb.OffloaderSettingsResponse) => ({
  remote_builds_enabled: r.settings?.remoteBuildsEnabled ?? false,
  version_match_policy: r.settings?.versionMatchPolicy ?? 'any',
  include_local_in_pool: r.settings?.includeLocalInPool ?? false,
  pairings: r.pairings.map(pairingToJson),
  // This host as an offloader: the pin a receiver lists when this host asks to pair.
  identity: r.identity ? { dashboard_id: r.identity.dashboardId, pin_sha256: r.identity.pinSha256, name: r.identity.name } : null,
});

const hostname = v.pipe(v.string('must be a string'), v.trim(), v.minLength(1, 'must not be empty'), v.maxLength(253, 'is too long'), v.regex(/^[^\s/\0]+$/, 'must be a host name or IP address'));
const port = v.pipe(v.number('must be a port number'), v.integer('must be a whole number'), v.minValue(1, 'must be 1-65535'), v.maxValue(65_535, 'must be 1-65535'));
const pin = v.pipe(v.string('must be a string'), v.regex(/^[0-9a-fA-F:\s]{64,95}$/, 'must be a SHA-256 fingerprint (64 hex digits)'));
// A name the receiver lists for approval (or this host shows): no control characters that could forge or hide text there.
const label = v.pipe(
  v.string('must be a string'),
  v.trim(),
  v.maxLength(DISPLAY_NAME_MAX, `is too long (at most ${DISPLAY_NAME_MAX} characters)`),
  v.check((s) => s === '' || isDisplayName(s), 'must not contain control characters (newlines, escapes, NUL, bidi overrides)'),
);
const strictBool = v.boolean('must be true or false');

const peerRef = v.pipe(v.string('must be a string'), v.minLength(1, 'must not be empty'), v.maxLength(128, 'is too long'));

/**
 * `remote_build/*` commands (upstream names). Receiver side onto the receiver's bus contract, offloader
 * side onto the firmware service's (OffloaderService); with nothing serving them they fail `unavailable`.
 */
export const remoteBuildCommands: Record<string, CommandHandler> = {
  'remote_build/get_identity': async (ctx, args) => {
    parseArgs(v.strictObject({}), args);
    return { result: identityToJson(await ctx.receiver.getIdentity({})) };
  },
  'remote_build/set_pairing_window': async (ctx, args) => {
    const a = parseArgs(
      v.strictObject({
        open: v.boolean('must be true or false'),
        timeout: v.optional(v.pipe(v.number('must be a number of seconds'), v.integer('must be whole seconds'), v.minValue(1, 'must be at least 1'), v.maxValue(86_400, 'must be at most 86400 (a day)'))),
      }),
      args,
    );
    return { result: identityToJson(await ctx.receiver.setPairingWindow({ open: a.open, timeoutS: a.timeout ?? 0 })) };
  },
  'remote_build/approve_peer': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ dashboard_id: peerRef }), args);
    const { peer } = await ctx.receiver.approvePeer({ peer: a.dashboard_id });
    return { result: peer ? peerToJson(peer) : null };
  },
  'remote_build/remove_peer': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ dashboard_id: peerRef }), args);
    return { result: { removed: (await ctx.receiver.removePeer({ peer: a.dashboard_id })).removed } };
  },
  'remote_build/rotate_identity': async (ctx, args) => {
    parseArgs(v.strictObject({}), args);
    return { result: identityToJson(await ctx.receiver.rotateIdentity({})) };
  },

  // ---- offloader side ----
  'remote_build/get_offloader_settings': async (ctx, args) => {
    parseArgs(v.strictObject({}), args);
    return { result: offloaderToJson(await ctx.offloader.getOffloaderSettings({ withoutCreatingIdentity: false })) };
  },
  'remote_build/set_offloader_settings': async (ctx, args) => {
    const a = parseArgs(
      v.strictObject({
        remote_builds_enabled: v.optional(strictBool),
        version_match_policy: v.optional(v.picklist(['any', 'release', 'exact'], 'must be "any", "release" or "exact"')),
        include_local_in_pool: v.optional(strictBool),
      }),
      args,
    );
    const request: pb.SetOffloaderSettingsRequest = {
      ...(a.remote_builds_enabled !== undefined ? { remoteBuildsEnabled: a.remote_builds_enabled } : {}),
      ...(a.version_match_policy !== undefined ? { versionMatchPolicy: a.version_match_policy } : {}),
      ...(a.include_local_in_pool !== undefined ? { includeLocalInPool: a.include_local_in_pool } : {}),
    };
    return { result: offloaderToJson(await ctx.offloader.setOffloaderSettings(request)) };
  },
  'remote_build/preview_pair': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ hostname, port }), args);
    const r = await ctx.offloader.previewPair({ hostname: a.hostname, port: a.port }, { timeoutMs: PAIRING_CALL_MS });
    return {
      result: {
        pin_sha256: r.pinSha256,
        dashboard_id: r.dashboardId,
        name: r.name,
        kiln_version: r.kilnVersion,
        protocol_version: r.protocolVersion,
        pairing_open: r.pairingOpen,
        requires_pairing_key: r.requiresPairingKey,
      },
    };
  },
  'remote_build/request_pair': async (ctx, args) => {
    const a = parseArgs(
      v.strictObject({ hostname, port, pin_sha256: pin, receiver_label: v.optional(label), offloader_label: v.optional(label), pairing_key: v.optional(v.pipe(v.string('must be a string'), v.maxLength(256, 'is too long'))) }),
      args,
    );
    const r = await ctx.offloader.requestPair(
      { hostname: a.hostname, port: a.port, pinSha256: a.pin_sha256, receiverLabel: a.receiver_label ?? '', offloaderLabel: a.offloader_label ?? '', pairingKey: a.pairing_key ?? '' },
      { timeoutMs: PAIRING_CALL_MS },
    );
    return { result: { status: r.status, pairing: r.pairing ? pairingToJson(r.pairing) : null } };
  },
  'remote_build/unpair': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ pin_sha256: pin }), args);
    return { result: { removed: (await ctx.offloader.unpair({ pinSha256: a.pin_sha256 })).removed } };
  },
  'remote_build/set_pairing_enabled': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ pin_sha256: pin, enabled: strictBool }), args);
    const { pairing } = await ctx.offloader.setPairingEnabled({ pinSha256: a.pin_sha256, enabled: a.enabled });
    return { result: pairing ? pairingToJson(pairing) : null };
  },
  'remote_build/edit_pairing_endpoint': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ pin_sha256: pin, hostname, port }), args);
    const { pairing } = await ctx.offloader.editPairingEndpoint({ pinSha256: a.pin_sha256, hostname: a.hostname, port: a.port }, { timeoutMs: PAIRING_CALL_MS });
    return { result: pairing ? pairingToJson(pairing) : null };
  },
};

// ---- builds sent to one receiver (remote_build/submit_job, cancel_job, download_artifacts) ----
// Onto the firmware service's RemoteJobService: a submitted build is an ordinary firmware job pinned to
// that receiver (firmware/follow_job, get_jobs, cancel and the history all see it).

const remoteJobRef = v.strictObject({ pin_sha256: pin, job_id: arg.jobId });

/** `data_b64` of each image, read in bus-sized chunks through firmware/read_artifact and checked against its SHA-256. */
async function readImage(ctx: Parameters<CommandHandler>[0], jobId: string, configuration: string, image: firmwarePb.RemoteArtifactImage): Promise<string> {
  const chunks: Uint8Array[] = [];
  let read = 0;
  for await (const chunk of artifactChunks(ctx.firmware, configuration, image.name)) {
    chunks.push(chunk.data);
    read += chunk.data.length;
    if (read > image.size) break;
  }
  const data = Buffer.concat(chunks);
  if (data.length !== image.size || createHash('sha256').update(data).digest('hex') !== image.sha256) {
    throw new KilnError('failed_precondition', `${image.name} of job ${jobId} changed while it was read (a later build of ${configuration}?); ask again`, { job_id: jobId, name: image.name });
  }
  return data.toString('base64');
}

export const remoteJobCommands: Record<string, CommandHandler> = {
  'remote_build/submit_job': async (ctx, args) => {
    const a = parseArgs(
      v.strictObject({ pin_sha256: pin, configuration: arg.configuration, target: v.optional(v.pipe(v.string('must be a string'), v.maxLength(32, 'is too long'))), port: v.optional(arg.port) }),
      args,
    );
    const { compile, upload } = await ctx.remoteJobs.submitJob({ pinSha256: a.pin_sha256, configuration: a.configuration, target: a.target ?? '', port: a.port ?? '' });
    // As firmware/install: the compile head (pinned to the receiver), its local upload alongside.
    return { result: { job_id: compile!.id, ...jobToJson(compile!), ...(upload ? { upload: jobToJson(upload) } : {}) } };
  },
  'remote_build/cancel_job': async (ctx, args) => {
    const a = parseArgs(remoteJobRef, args);
    const { job } = await ctx.remoteJobs.cancelJob({ pinSha256: a.pin_sha256, jobId: a.job_id });
    return { result: { sent: true, cancelled: true, ...jobToJson(job!) } };
  },
  'remote_build/download_artifacts': async (ctx, args) => {
    const a = parseArgs(remoteJobRef, args);
    const set = await ctx.remoteJobs.downloadArtifacts({ pinSha256: a.pin_sha256, jobId: a.job_id });
    const images = [];
    for (const image of set.images) images.push({ name: image.name, offset: image.offset, size: image.size, data_b64: await readImage(ctx, a.job_id, set.configuration, image) });
    return { result: { job_id: a.job_id, configuration: set.configuration, images } };
  },
};
