import { JobStatus, JobType, type Job } from '../jobs/job.js';

/**
 * Uploads read build artifacts that clean and reset delete, and the two lanes run concurrently:
 * - an upload does not start while a reset (any configuration) or a clean of its configuration is
 *   queued or running (it would flash a half-wiped or stale tree);
 * - a clean/reset does not start wiping while an upload that reads those files is running.
 */
export class BuildGate {
  constructor(private readonly jobs: () => Iterable<Job>) {}

  /** Why this upload must wait, or undefined when it may start. */
  uploadBlockedBy(upload: Job): Job | undefined {
    for (const job of this.jobs()) {
      if (job.status !== JobStatus.JOB_STATUS_QUEUED && job.status !== JobStatus.JOB_STATUS_RUNNING) continue;
      if (job.held) continue;
      if (job.type === JobType.JOB_TYPE_RESET_BUILD_ENV) return job;
      if (job.type === JobType.JOB_TYPE_CLEAN && job.configuration === upload.configuration) return job;
    }
    return undefined;
  }

  /** The running upload this clean/reset must wait for, or undefined. */
  maintenanceBlockedBy(maintenance: Job): Job | undefined {
    for (const job of this.jobs()) {
      if (job.status !== JobStatus.JOB_STATUS_RUNNING || job.type !== JobType.JOB_TYPE_UPLOAD) continue;
      if (maintenance.type === JobType.JOB_TYPE_RESET_BUILD_ENV || job.configuration === maintenance.configuration) return job;
    }
    return undefined;
  }
}
