import * as pb from './gen/kiln/firmware/v1/firmware.js';

// The firmware service's bus commands are declared in proto (FirmwareService, RemoteJobService in
// kiln/firmware/v1/firmware.proto); bind them with busClient/serveBus. Events: subjects.ts.

/** Job type and status names as the API and logs spell them (upstream's lower-case names). */
const JOB_TYPE_NAMES: Record<pb.JobType, string> = {
  [pb.JobType.JOB_TYPE_UNSPECIFIED]: 'unspecified',
  [pb.JobType.JOB_TYPE_COMPILE]: 'compile',
  [pb.JobType.JOB_TYPE_UPLOAD]: 'upload',
  [pb.JobType.JOB_TYPE_CLEAN]: 'clean',
  [pb.JobType.JOB_TYPE_RESET_BUILD_ENV]: 'reset_build_env',
  [pb.JobType.JOB_TYPE_RENAME]: 'rename',
  [pb.JobType.JOB_TYPE_INSTALL]: 'install',
};

const JOB_STATUS_NAMES: Record<pb.JobStatus, string> = {
  [pb.JobStatus.JOB_STATUS_UNSPECIFIED]: 'unspecified',
  [pb.JobStatus.JOB_STATUS_QUEUED]: 'queued',
  [pb.JobStatus.JOB_STATUS_RUNNING]: 'running',
  [pb.JobStatus.JOB_STATUS_COMPLETED]: 'completed',
  [pb.JobStatus.JOB_STATUS_FAILED]: 'failed',
  [pb.JobStatus.JOB_STATUS_CANCELLED]: 'cancelled',
};

export const jobTypeName = (type: pb.JobType): string => JOB_TYPE_NAMES[type] ?? String(type);
export const jobStatusName = (status: pb.JobStatus): string => JOB_STATUS_NAMES[status] ?? String(status);

/** The status whose name is `name` (e.g. a client's `status` filter). */
export function jobStatusNamed(name: string): pb.JobStatus | undefined {
  const entry = Object.entries(JOB_STATUS_NAMES).find(([, n]) => n === name);
  return entry ? (Number(entry[0]) as pb.JobStatus) : undefined;
}

/** Largest artifact chunk one bus reply carries. */
export const ARTIFACT_CHUNK_BYTES = 256 * 1024;

/** The targets remote_build/submit_job accepts. */
export const REMOTE_JOB_TARGETS = ['compile', 'install'] as const;
export type RemoteJobTarget = (typeof REMOTE_JOB_TARGETS)[number];

/** remote_build/download_artifacts answers with every image inline (base64): at most this many bytes in all. */
export const MAX_REMOTE_ARTIFACTS_BYTES = 16 * 1024 * 1024;

/**
 * Deadline of `kiln.firmware.forget_build`: it waits until the device's running jobs are gone, which
 * takes up to `firmware.killGraceMs` (at most a minute) for a process ignoring SIGTERM.
 */
export const FORGET_BUILD_TIMEOUT_MS = 90_000;
