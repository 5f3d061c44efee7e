import { firmwarePb as pb, jobStatusNamed, readOutputTail } from '@kiln/contracts';
import { KilnError } from '@kiln/core';
import { streamEvents, streamLog, type LogItem } from '@kiln/streams';
import { DOWNLOAD_TOKEN_TTL_MS } from '../download.js';
import { arg, parseArgs, v } from './args.js';
import { onJobActivity } from './firmware-events.js';
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
  // Output is read from its owner, the log store; the job (and not_found for an unknown id) from the firmware service.
  'firmware/get_job': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ job_id: arg.jobId }), args);
    const [reply, output] = await Promise.all([ctx.firmware.getJob({ jobId: a.job_id }), readOutputTail(ctx.logs, a.job_id)]);
    return result({ ...jobToJson(reply.job!), output: output.lines });
  },
  'firmware/get_job_output': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ job_id: arg.jobId }), args);
    const [, output] = await Promise.all([ctx.firmware.getJob({ jobId: a.job_id }), readOutputTail(ctx.logs, a.job_id)]);
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
   * History then live for one job, ending with its final state as the result: its output from the
   * log store, its lifecycle and progress from the firmware service, merged by streamLog. Output
   * may be dropped for a slow client (told by `job_output_dropped`); lifecycle events and the result never are.
   */
  'firmware/follow_job': async (ctx, args, session) => {
    const { job_id: jobId } = parseArgs(v.strictObject({ job_id: arg.jobId }), args);
    await ctx.firmware.getJob({ jobId }); // not_found before any stream starts
    const stream = streamLog<StreamItem & { at?: LogItem }>({
      ...streamBounds(ctx, session),
      dropNotice: outputDropNotice(),
      attach: (c) =>
        onJobActivity(
          ctx.bus,
          {
            output: (o) => c.push({ event: 'job_output', data: { job_id: jobId, first_seq: o.firstSeq, lines: o.lines }, at: { log: jobId, lines: [o.firstSeq, o.firstSeq + o.lines.length] } }),
            event: (e) => {
              if (e.kind === 'progress' && e.jobId === jobId) c.push({ event: 'job_progress', data: { job_id: jobId, progress: e.progress } });
              else if (e.kind === 'lifecycle' && e.job.id === jobId) {
                const rank = statusRank(e.job.status);
                if (isTerminalStatus(e.job.status)) {
                  c.pushPriority({ result: jobToJson(e.job), at: { log: jobId, rank, last: true } });
                  c.end();
                } else c.pushPriority({ event: 'job_state', data: jobToJson(e.job), at: { log: jobId, rank } });
              }
            },
          },
          jobId,
        ),
      /**
       * The log before the job: output in the log means the job was announced started, so the state
       * read after it is never older than the output shown. A job that finished after the read has a
       * complete log by now (it is closed before the end is announced): read again for its last lines.
       */
      snapshot: async function* () {
        let output = await readOutputTail(ctx.logs, jobId);
        const job = (await ctx.firmware.getJob({ jobId })).job!;
        const rank = statusRank(job.status);
        if (isTerminalStatus(job.status) && !output.closed) output = await readOutputTail(ctx.logs, jobId);
        yield { event: 'job_state', data: jobToJson(job), at: { log: jobId, rank } };
        const numbered = output.lines.length - (output.trimmed ? 1 : 0);
        const lines = { log: jobId, lines: [output.totalLines - numbered, output.totalLines] as const };
        if (output.lines.length > 0) yield { event: 'job_output', data: { job_id: jobId, lines: output.lines }, at: lines };
        if (isTerminalStatus(job.status)) yield { result: jobToJson(job), at: { log: jobId, rank, last: true } };
      },
      itemOf: (item) => item.at,
      skipLines: (item, skip) => {
        const data = (item as { data: { job_id: string; first_seq: number; lines: string[] } }).data;
        return { event: 'job_output', data: { ...data, first_seq: data.first_seq + skip, lines: data.lines.slice(skip) } };
      },
    });
    return { stream };
  },

  /** Every job's lifecycle, progress and output: a snapshot of the job list, then live. Output may be dropped as for follow_job. */
  'firmware/follow_jobs': async (ctx, args, session) => {
    parseArgs(v.strictObject({ snapshot: v.optional(v.boolean('must be a boolean'), true) }), args);
    const ranks = new Map<string, number>();
    const stream = streamEvents<StreamItem>({
      ...streamBounds(ctx, session),
      dropNotice: outputDropNotice(),
      attach: (c) =>
        onJobActivity(ctx.bus, {
          output: (o) => c.push({ event: 'job_output', data: { job_id: o.jobId, first_seq: o.firstSeq, lines: o.lines } }),
          event: (e) => {
            if (e.kind === 'progress') c.push({ event: 'job_progress', data: { job_id: e.jobId, progress: e.progress } });
            else if (e.kind === 'cleared') c.pushPriority({ event: 'jobs_cleared', data: { job_ids: e.jobIds } });
            else {
              // Drop a lifecycle event older than what the snapshot already showed for that job.
              const known = ranks.get(e.job.id);
              if (known !== undefined && statusRank(e.job.status) < known) return;
              c.pushPriority({ event: `job_${e.name}`, data: jobToJson(e.job) });
            }
          },
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
