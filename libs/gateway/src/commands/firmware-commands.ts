import { asEventStream, firmwarePb as pb, jobStatusNamed } from '@kiln/contracts';
import { KilnError } from '@kiln/core';
import { streamEvents, type EventStream } from '@kiln/streams';
import { DOWNLOAD_TOKEN_TTL_MS } from '../download.js';
import { arg, parseArgs, v } from './args.js';
import { onFirmwareEvents } from './firmware-events.js';
import { isTerminalStatus, jobToJson, statusRank } from './job-json.js';
import { outputDropNotice, streamBounds } from './stream-bounds.js';
import type { CommandHandler, StreamItem } from './types.js';

const result = (value: unknown) => ({ result: value });
const job = (reply: pb.JobResponse) => result(jobToJson(reply.job!));
const jobs = (reply: pb.JobsResponse) => result(reply.jobs.map(jobToJson));

/** `firmware/*` commands with upstream names and arguments, onto the firmware service (FirmwareService in firmware.proto). */
export const firmwareCommands: Record<string, CommandHandler> = {
  'firmware/compile': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ configuration: arg.configuration }), args);
    return job(await ctx.firmware.compile({ configuration: a.configuration }));
  },
  'firmware/upload': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ configuration: arg.configuration, port: v.optional(arg.port, 'OTA') }), args);
    return job(await ctx.firmware.upload({ configuration: a.configuration, port: a.port || 'OTA' }));
  },
  'firmware/install': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ configuration: arg.configuration, port: v.optional(arg.port, 'OTA') }), args);
    const chain = await ctx.firmware.install({ configuration: a.configuration, port: a.port || 'OTA' });
    // Upstream returns the compile head; the dependent upload rides along.
    return result({ ...jobToJson(chain.compile!), upload: jobToJson(chain.upload!) });
  },
  'firmware/install_bulk': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ configurations: arg.configurations, port: v.optional(arg.port, 'OTA') }), args);
    return jobs(await ctx.firmware.installBulk({ items: a.configurations.map((configuration) => ({ configuration, port: a.port || 'OTA' })) }));
  },
  'firmware/compile_bulk': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ configurations: arg.configurations }), args);
    return jobs(await ctx.firmware.compileBulk({ configurations: a.configurations }));
  },
  'firmware/clean': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ configuration: arg.configuration }), args);
    return job(await ctx.firmware.clean({ configuration: a.configuration }));
  },
  'firmware/reset_build_env': async (ctx, args) => {
    parseArgs(v.strictObject({}), args);
    return job(await ctx.firmware.resetBuildEnv({}));
  },
  'firmware/rename': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ configuration: arg.configuration, new_name: v.pipe(v.string('must be a string'), v.maxLength(64)) }), args);
    return job(await ctx.firmware.rename({ configuration: a.configuration, newName: a.new_name }));
  },
  'firmware/cancel': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ job_id: arg.jobId }), args);
    return job(await ctx.firmware.cancel({ jobId: a.job_id }));
  },
  'firmware/clear': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ status: v.optional(v.picklist(['completed', 'failed', 'cancelled'], 'must be completed, failed or cancelled')) }), args);
    return result({ removed: (await ctx.firmware.clear({ status: a.status ? jobStatusNamed(a.status) : undefined })).removedJobIds });
  },
  'firmware/get_jobs': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ status: v.optional(v.picklist(['queued', 'running', 'completed', 'failed', 'cancelled'])), configuration: v.optional(arg.configuration) }), args);
    const list = (await ctx.firmware.getJobs({})).jobs.map(jobToJson).filter((j) => (!a.status || j.status === a.status) && (!a.configuration || j.configuration === a.configuration));
    return result(list);
  },
  'firmware/get_job': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ job_id: arg.jobId }), args);
    const [reply, output] = await Promise.all([ctx.firmware.getJob({ jobId: a.job_id }), ctx.firmware.getJobOutput({ jobId: a.job_id })]);
    return result({ ...jobToJson(reply.job!), output: output.lines });
  },
  'firmware/get_job_output': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ job_id: arg.jobId }), args);
    const output = await ctx.firmware.getJobOutput({ jobId: a.job_id });
    return result({ job_id: a.job_id, lines: output.lines, total_lines: output.totalLines });
  },
  'firmware/queue_status': async (ctx, args) => {
    parseArgs(v.strictObject({}), args);
    const s = await ctx.firmware.queueStatus({});
    const lane = (l: pb.LaneStatus | undefined) => ({ idle: l?.idle ?? true, running: l?.runningJobIds ?? [], depth: l?.depth ?? 0, slots: l?.slots ?? 0 });
    return result({ compile: lane(s.compile), upload: lane(s.upload), held: s.held });
  },

  'firmware/get_binaries': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ configuration: arg.configuration }), args);
    const { artifacts } = await ctx.firmware.getBinaries({ configuration: a.configuration });
    return result({ configuration: a.configuration, files: artifacts.map((x) => ({ file: x.file, size: x.sizeBytes, modified_at: new Date(x.modifiedAtMs).toISOString() })) });
  },
  'firmware/download_token': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ configuration: arg.configuration, file: v.pipe(v.string('must be a string'), v.maxLength(128)) }), args);
    const { artifacts } = await ctx.firmware.getBinaries({ configuration: a.configuration });
    if (!artifacts.some((x) => x.file === a.file)) {
      throw new KilnError('not_found', `no artifact ${JSON.stringify(a.file)} for ${a.configuration} (build it first)`, { configuration: a.configuration, file: a.file });
    }
    const token = ctx.downloads.mint(a.configuration, a.file);
    return result({ token, url: `/api/firmware/download?token=${token}`, expires_in: DOWNLOAD_TOKEN_TTL_MS / 1000 });
  },

  /**
   * History then live for one job, ending with its final state as the result. Output may be
   * dropped for a slow client (told by `job_output_dropped`); lifecycle events and the result never are.
   */
  'firmware/follow_job': async (ctx, args, session) => {
    const { job_id: jobId } = parseArgs(v.strictObject({ job_id: arg.jobId }), args);
    await ctx.firmware.getJob({ jobId }); // not_found before any stream starts
    let seen = 0; // output lines the snapshot covered (log line numbers below this are history)
    let rank = 0;
    const inner = streamEvents<StreamItem & { seq?: number; rank?: number }>({
      ...streamBounds(ctx, session),
      dropNotice: outputDropNotice(),
      attach: (c) =>
        onFirmwareEvents(ctx.bus, (e) => {
          if (e.kind === 'output' && e.jobId === jobId) c.push({ event: 'job_output', data: { job_id: jobId, first_seq: e.firstSeq, lines: e.lines }, seq: e.firstSeq });
          else if (e.kind === 'progress' && e.jobId === jobId) c.push({ event: 'job_progress', data: { job_id: jobId, progress: e.progress } });
          else if (e.kind === 'lifecycle' && e.job.id === jobId) {
            if (isTerminalStatus(e.job.status)) {
              c.pushPriority({ result: jobToJson(e.job), rank: 2 });
              c.end();
            } else c.pushPriority({ event: 'job_state', data: jobToJson(e.job), rank: statusRank(e.job.status) });
          }
        }),
      snapshot: async function* () {
        const [reply, output] = await Promise.all([ctx.firmware.getJob({ jobId }), ctx.firmware.getJobOutput({ jobId })]);
        const job = reply.job!;
        seen = output.totalLines;
        rank = statusRank(job.status);
        yield { event: 'job_state', data: jobToJson(job) };
        if (output.lines.length > 0) yield { event: 'job_output', data: { job_id: jobId, lines: output.lines } };
        if (isTerminalStatus(job.status)) yield { result: jobToJson(job) };
      },
    });
    return { stream: dedupe(inner, () => seen, () => rank) };
  },

  /** Every job's lifecycle, progress and output: a snapshot of the job list, then live. Output may be dropped as for follow_job. */
  'firmware/follow_jobs': async (ctx, args, session) => {
    parseArgs(v.strictObject({ snapshot: v.optional(v.boolean('must be a boolean'), true) }), args);
    const ranks = new Map<string, number>();
    const stream = streamEvents<StreamItem>({
      ...streamBounds(ctx, session),
      dropNotice: outputDropNotice(),
      attach: (c) =>
        onFirmwareEvents(ctx.bus, (e) => {
          if (e.kind === 'output') c.push({ event: 'job_output', data: { job_id: e.jobId, first_seq: e.firstSeq, lines: e.lines } });
          else if (e.kind === 'progress') c.push({ event: 'job_progress', data: { job_id: e.jobId, progress: e.progress } });
          else if (e.kind === 'cleared') c.pushPriority({ event: 'jobs_cleared', data: { job_ids: e.jobIds } });
          else {
            // Drop a lifecycle event older than what the snapshot already showed for that job.
            const known = ranks.get(e.job.id);
            if (known !== undefined && statusRank(e.job.status) < known) return;
            c.pushPriority({ event: `job_${e.name}`, data: jobToJson(e.job) });
          }
        }),
      snapshot: async function* () {
        const list = (await ctx.firmware.getJobs({})).jobs;
        for (const job of list) ranks.set(job.id, statusRank(job.status));
        yield { event: 'initial_state', data: { jobs: list.map(jobToJson) } };
      },
    });
    return { stream };
  },
};

/** follow_job: drop live output the snapshot already held and lifecycle events older than it. */
function dedupe(
  inner: ReturnType<typeof streamEvents<StreamItem & { seq?: number; rank?: number }>>,
  seen: () => number,
  rank: () => number,
): EventStream<StreamItem> {
  async function* filtered(): AsyncGenerator<StreamItem, void, undefined> {
    try {
      for await (const item of inner) {
        if (item.seq !== undefined && 'event' in item) {
          const data = item.data as { job_id: string; first_seq: number; lines: string[] };
          const skip = seen() - item.seq;
          if (skip >= data.lines.length) continue;
          yield { event: item.event, data: skip > 0 ? { ...data, first_seq: data.first_seq + skip, lines: data.lines.slice(skip) } : data };
          continue;
        }
        if (item.rank !== undefined && item.rank < rank()) continue;
        yield 'result' in item ? { result: item.result } : { event: item.event, data: item.data };
        if ('result' in item) return;
      }
    } finally {
      inner[Symbol.dispose]();
    }
  }
  return asEventStream(filtered(), inner);
}
