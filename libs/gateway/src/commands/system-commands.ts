import { devicesPb, remotePb as pb } from '@kiln/contracts';
import { disposeAll, KilnError } from '@kiln/core';
import { streamEvents } from '@kiln/streams';
import { deviceToJson } from './devices-commands.js';
import { parseArgs, v } from './args.js';
import { streamBounds } from './stream-bounds.js';
import { onFirmwareEvents } from './firmware-events.js';
import { jobToJson } from './job-json.js';
import { onDeviceChanges, onOffloaderChanges, onReceiverChanges } from './remote-build-events.js';
import { identityToJson, offloaderToJson, pairingWindowToJson, pairStatusToJson } from './remote-build-commands.js';
import type { CommandHandler, StreamItem } from './types.js';

export const systemCommands: Record<string, CommandHandler> = {
  'config/version': async (ctx, args) => {
    parseArgs(v.strictObject({}), args);
    return { result: ctx.serverInfo() };
  },

  /**
   * initial_state then live events. Fails closed: a client that falls `streamCapacity` events (or
   * `streamMaxBytes` bytes) behind gets an error frame and the socket closes, so it resyncs from a fresh snapshot instead
   * of showing a state that silently missed an event.
   */
  subscribe_events: async (ctx, args, session) => {
    parseArgs(v.strictObject({}), args);
    const stream = streamEvents<StreamItem>({
      ...streamBounds(ctx, session),
      attach: (c) => {
        const devices = onDeviceChanges(ctx.bus, (e) => {
          if (e.change === devicesPb.DeviceChange.DEVICE_CHANGE_REMOVED) c.pushOrTerminate({ event: 'device_removed', data: { configuration: e.configuration } });
          else if (e.device) c.pushOrTerminate({ event: e.change === devicesPb.DeviceChange.DEVICE_CHANGE_ADDED ? 'device_added' : 'device_updated', data: deviceToJson(e.device) });
        });
        const jobs = onFirmwareEvents(
          ctx.bus,
          (e) => {
            if (e.kind === 'lifecycle') c.pushOrTerminate({ event: `job_${e.name}`, data: jobToJson(e.job) });
            else if (e.kind === 'cleared') c.pushOrTerminate({ event: 'jobs_cleared', data: { job_ids: e.jobIds } });
            // Progress is a sample, not state: dropped when the client is behind, never a reason to resync.
            else if (e.kind === 'progress') c.push({ event: 'job_progress', data: { job_id: e.jobId, progress: e.progress } });
          },
          ['queued', 'started', 'completed', 'failed', 'cancelled', 'cleared', 'progressed'],
        );
        // Remote-build state: every change is an event (fail closed like the lifecycle events).
        const receiver = onReceiverChanges(ctx.bus, (e) => {
          if (!e.identity) return;
          if (e.change === pb.ReceiverChange.RECEIVER_CHANGE_PAIRING_WINDOW) c.pushOrTerminate({ event: 'remote_build_pairing_window_changed', data: pairingWindowToJson(e.identity) });
          else if (e.change === pb.ReceiverChange.RECEIVER_CHANGE_PEER && e.peer) c.pushOrTerminate({ event: 'remote_build_pair_status_changed', data: pairStatusToJson(e.peer, e.peerRemoved) });
          else if (e.change === pb.ReceiverChange.RECEIVER_CHANGE_IDENTITY) c.pushOrTerminate({ event: 'remote_build_identity_changed', data: identityToJson(e.identity) });
        });
        const offloader = onOffloaderChanges(ctx.bus, (view) => c.pushOrTerminate({ event: 'remote_build_offloader_changed', data: offloaderToJson(view) }));
        return { [Symbol.dispose]: () => disposeAll([devices, jobs, receiver, offloader]) };
      },
      snapshot: () => {
        // Device and job lists are fetched over the bus after the listeners attached: a change is in
        // them or arrives as an event after initial_state (a change in both is applied twice, to the same state).
        return (async function* () {
          const [devicesReply, jobs, receiver, offloader] = await Promise.all([
            ctx.devices.list({}),
            ctx.firmware.getJobs({}),
            remoteBuildState(async () => identityToJson(await ctx.receiver.getIdentity({}, { timeoutMs: REMOTE_STATE_TIMEOUT_MS }))),
            remoteBuildState(async () => offloaderToJson(await ctx.offloader.getOffloaderSettings({ withoutCreatingIdentity: true }, { timeoutMs: REMOTE_STATE_TIMEOUT_MS }))),
          ]);
          const remote_build = { receiver: receiver.state, receiver_error: receiver.error, offloader: offloader.state, offloader_error: offloader.error };
          yield { event: 'initial_state', data: { devices: devicesReply.devices.map(deviceToJson), jobs: jobs.jobs.map(jobToJson), remote_build } };
        })();
      },
    });
    return { stream };
  },
};

/** A snapshot read must not hold initial_state back for long: a service that does not answer soon is reported, not waited for. */
const REMOTE_STATE_TIMEOUT_MS = 5_000;

type ErrorJson = { code: string; message: string };

/**
 * The receiver's or offloader's state for initial_state, read after the listeners attached (so a
 * change is in it or arrives as an event after it). An error when the service is not hosted
 * (`unavailable`) or did not answer; a client reads it again when an event of that side arrives.
 */
async function remoteBuildState<J>(read: () => Promise<J>): Promise<{ state: J | null; error: ErrorJson | null }> {
  try {
    return { state: await read(), error: null };
  } catch (err) {
    const e = err instanceof KilnError ? err : new KilnError('internal_error', String(err));
    return { state: null, error: { code: e.code, message: e.message } };
  }
}
