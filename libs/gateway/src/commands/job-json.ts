import { firmwarePb as pb, jobStatusName, jobTypeName } from '@kiln/contracts';

const LANES: Record<number, string> = { 1: 'compile', 2: 'upload' };

export type JobJson = ReturnType<typeof jobToJson>;

/** A job as the WebSocket API shows it: upstream field names, string enums, ISO times. */
export function jobToJson(job: pb.Job) {
  const iso = (ms: number) => (ms > 0 ? new Date(ms).toISOString() : null);
  return {
    id: job.id,
    configuration: job.configuration,
    type: jobTypeName(job.type),
    status: jobStatusName(job.status),
    created_at: iso(job.createdAtMs),
    started_at: iso(job.startedAtMs),
    finished_at: iso(job.finishedAtMs),
    exit_code: job.exitCode ?? null,
    error: job.error || null,
    port: job.port || null,
    depends_on: job.dependsOn || null,
    source: job.source === pb.JobSource.JOB_SOURCE_REMOTE ? 'remote' : 'local',
    progress: job.progress,
    new_name: job.newName || null,
    lane: LANES[job.lane] ?? null,
    held: job.held,
    /** The receiver a remote_build/submit_job sent it to (its pin); null for jobs the scheduler places. */
    receiver_pin: job.receiverPin || null,
  };
}

const RANK: Record<number, number> = { 1: 0, 2: 1, 3: 2, 4: 2, 5: 2 };

/** Lifecycle order: an event older than what a snapshot already showed is stale and dropped. */
export function statusRank(status: pb.JobStatus): number {
  return RANK[status] ?? 0;
}

export const isTerminalStatus = (status: pb.JobStatus): boolean => statusRank(status) === 2;
