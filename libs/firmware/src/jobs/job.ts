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

export { jobTypeName as typeName, jobStatusName as statusName } from '@kiln/contracts';

/** Why a held dependent was cancelled: its prerequisite failed, was cancelled or is gone. */
export const PREREQUISITE_FAILED = 'prerequisite job did not complete successfully';
