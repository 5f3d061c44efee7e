import { firmwarePb as pb } from '@kiln/contracts';

export type Job = pb.Job;
export const { JobType, JobStatus, LaneName, JobSource } = pb;

export const ACTIVE = new Set<pb.JobStatus>([pb.JobStatus.JOB_STATUS_QUEUED, pb.JobStatus.JOB_STATUS_RUNNING]);

export const isActive = (job: Job): boolean => ACTIVE.has(job.status);
export const isTerminal = (job: Job): boolean => !isActive(job);

/** CPU work (and everything that touches the build tree) on the compile lane; flashing on the upload lane. */
export function laneFor(type: pb.JobType): pb.LaneName {
  return type === pb.JobType.JOB_TYPE_UPLOAD ? pb.LaneName.LANE_NAME_UPLOAD : pb.LaneName.LANE_NAME_COMPILE;
}

export const isMaintenance = (job: Job): boolean =>
  job.type === pb.JobType.JOB_TYPE_CLEAN || job.type === pb.JobType.JOB_TYPE_RESET_BUILD_ENV;

const TYPE_NAMES: Record<pb.JobType, string> = {
  [pb.JobType.JOB_TYPE_UNSPECIFIED]: 'unspecified',
  [pb.JobType.JOB_TYPE_COMPILE]: 'compile',
  [pb.JobType.JOB_TYPE_UPLOAD]: 'upload',
  [pb.JobType.JOB_TYPE_CLEAN]: 'clean',
  [pb.JobType.JOB_TYPE_RESET_BUILD_ENV]: 'reset_build_env',
  [pb.JobType.JOB_TYPE_RENAME]: 'rename',
  [pb.JobType.JOB_TYPE_INSTALL]: 'install',
};

const STATUS_NAMES: Record<pb.JobStatus, string> = {
  [pb.JobStatus.JOB_STATUS_UNSPECIFIED]: 'unspecified',
  [pb.JobStatus.JOB_STATUS_QUEUED]: 'queued',
  [pb.JobStatus.JOB_STATUS_RUNNING]: 'running',
  [pb.JobStatus.JOB_STATUS_COMPLETED]: 'completed',
  [pb.JobStatus.JOB_STATUS_FAILED]: 'failed',
  [pb.JobStatus.JOB_STATUS_CANCELLED]: 'cancelled',
};

export const typeName = (type: pb.JobType): string => TYPE_NAMES[type] ?? String(type);
export const statusName = (status: pb.JobStatus): string => STATUS_NAMES[status] ?? String(status);

/** Jobs that reset_build_env / the whole-configuration gate treat as reading or writing the build tree. */
export const PREREQUISITE_FAILED = 'prerequisite job did not complete successfully';
