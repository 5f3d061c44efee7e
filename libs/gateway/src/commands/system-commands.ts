import { disposeAll } from '@kiln/core';
import { streamEvents } from '@kiln/streams';
import { deviceToJson } from './devices-commands.js';
import { parseArgs, v } from './args.js';
import { onFirmwareEvents } from './firmware-events.js';
import { jobToJson } from './job-json.js';
import type { CommandHandler, StreamItem } from './types.js';

export const systemCommands: Record<string, CommandHandler> = {
  'config/version': async (ctx, args) => {
    parseArgs(v.strictObject({}), args);
    return { result: ctx.serverInfo() };
  },

  /**
   * initial_state then live events. Fails closed: a client that falls `streamCapacity` events
   * behind gets an error frame and the socket closes, so it resyncs from a fresh snapshot instead
   * of showing a state that silently missed an event.
   */
  subscribe_events: async (ctx, args) => {
    parseArgs(v.strictObject({}), args);
    const stream = streamEvents<StreamItem>({
      capacity: ctx.streamCapacity,
      attach: (c) => {
        const devices = ctx.devices.onEvent((e) =>
          c.pushOrTerminate(e.type === 'device_removed' ? { event: e.type, data: { configuration: e.configuration } } : { event: e.type, data: deviceToJson(e.device) }),
        );
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
        return { [Symbol.dispose]: () => disposeAll([devices, jobs]) };
      },
      snapshot: () => {
        // The device list is taken in the same tick as the listeners attach; the job list is fetched over the bus.
        const devices = ctx.devices.list().map(deviceToJson);
        return (async function* () {
          yield { event: 'initial_state', data: { devices, jobs: (await ctx.firmware.getJobs()).map(jobToJson) } };
        })();
      },
    });
    return { stream };
  },
};
