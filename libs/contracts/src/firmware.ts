import type { Bus } from '@kiln/bus';
import * as pb from './gen/kiln/firmware/v1/firmware.js';
import { callRpc, rpcFamily, type RpcMethod } from './rpc.js';

/** Commands on `kiln.firmware.<command>` (upstream firmware/* names), events on `kiln.firmware.job.<event>`. */
export const firmwareSubjects = {
  command: (name: string) => `kiln.firmware.${name}`,
  /** The offloader's commands (upstream `remote_build/*` offloader-side names), served by the firmware service. */
  offloaderCommand: (name: string) => `kiln.firmware.offloader.${name}`,
  event: (name: FirmwareEventName) => `kiln.firmware.job.${name}`,
  allEvents: 'kiln.firmware.job.>',
} as const;

export const FIRMWARE_EVENTS = ['queued', 'started', 'completed', 'failed', 'cancelled', 'progressed', 'output', 'cleared'] as const;
export type FirmwareEventName = (typeof FIRMWARE_EVENTS)[number];

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

const command = rpcFamily(firmwareSubjects.command);

export const firmwareRpc = {
  compile: command('compile', pb.CompileRequest, pb.JobResponse),
  upload: command('upload', pb.UploadRequest, pb.JobResponse),
  install: command('install', pb.InstallRequest, pb.InstallResponse),
  installBulk: command('install_bulk', pb.InstallBulkRequest, pb.JobsResponse),
  compileBulk: command('compile_bulk', pb.CompileBulkRequest, pb.JobsResponse),
  clean: command('clean', pb.CleanRequest, pb.JobResponse),
  resetBuildEnv: command('reset_build_env', pb.ResetBuildEnvRequest, pb.JobResponse),
  rename: command('rename', pb.RenameRequest, pb.JobResponse),
  cancel: command('cancel', pb.CancelRequest, pb.JobResponse),
  clear: command('clear', pb.ClearRequest, pb.ClearResponse),
  getJobs: command('get_jobs', pb.GetJobsRequest, pb.JobsResponse),
  getJob: command('get_job', pb.GetJobRequest, pb.JobResponse),
  getJobOutput: command('get_job_output', pb.GetJobOutputRequest, pb.GetJobOutputResponse),
  queueStatus: command('queue_status', pb.QueueStatusRequest, pb.QueueStatus),
  getBinaries: command('get_binaries', pb.GetBinariesRequest, pb.GetBinariesResponse),
  readArtifact: command('read_artifact', pb.ReadArtifactRequest, pb.ReadArtifactResponse),
} as const;

/** Largest artifact chunk one bus reply carries. */
export const ARTIFACT_CHUNK_BYTES = 256 * 1024;

/** The firmware service's contract: implemented in-process by the service, remotely by the bus client. */
export interface FirmwareApi {
  compile(configuration: string): Promise<pb.Job>;
  upload(configuration: string, port: string): Promise<pb.Job>;
  install(configuration: string, port: string): Promise<pb.InstallResponse>;
  installBulk(items: ReadonlyArray<{ configuration: string; port: string }>): Promise<pb.Job[]>;
  compileBulk(configurations: readonly string[]): Promise<pb.Job[]>;
  clean(configuration: string): Promise<pb.Job>;
  resetBuildEnv(): Promise<pb.Job>;
  rename(configuration: string, newName: string): Promise<pb.Job>;
  cancel(jobId: string): Promise<pb.Job>;
  /** Remove finished jobs (only those with `status`, when given) and their logs. */
  clear(status?: pb.JobStatus): Promise<string[]>;
  getJobs(): Promise<pb.Job[]>;
  getJob(jobId: string): Promise<pb.Job>;
  getJobOutput(jobId: string): Promise<pb.GetJobOutputResponse>;
  queueStatus(): Promise<pb.QueueStatus>;
  getBinaries(configuration: string): Promise<pb.Artifact[]>;
  readArtifact(configuration: string, file: string, offset: number, length: number): Promise<pb.ReadArtifactResponse>;
}

const job = (r: pb.JobResponse): pb.Job => r.job!;

export function createFirmwareBusClient(bus: Bus, timeoutMs?: number): FirmwareApi {
  const call = <Req, Res>(method: RpcMethod<Req, Res>, req: Req) => callRpc(bus, method, req, timeoutMs);
  return {
    compile: async (configuration) => job(await call(firmwareRpc.compile, { configuration })),
    upload: async (configuration, port) => job(await call(firmwareRpc.upload, { configuration, port })),
    install: (configuration, port) => call(firmwareRpc.install, { configuration, port }),
    installBulk: async (items) => (await call(firmwareRpc.installBulk, { items: [...items] })).jobs,
    compileBulk: async (configurations) => (await call(firmwareRpc.compileBulk, { configurations: [...configurations] })).jobs,
    clean: async (configuration) => job(await call(firmwareRpc.clean, { configuration })),
    resetBuildEnv: async () => job(await call(firmwareRpc.resetBuildEnv, {})),
    rename: async (configuration, newName) => job(await call(firmwareRpc.rename, { configuration, newName })),
    cancel: async (jobId) => job(await call(firmwareRpc.cancel, { jobId })),
    clear: async (status) => (await call(firmwareRpc.clear, { status: status ?? pb.JobStatus.JOB_STATUS_UNSPECIFIED })).removedJobIds,
    getJobs: async () => (await call(firmwareRpc.getJobs, {})).jobs,
    getJob: async (jobId) => job(await call(firmwareRpc.getJob, { jobId })),
    getJobOutput: (jobId) => call(firmwareRpc.getJobOutput, { jobId }),
    queueStatus: () => call(firmwareRpc.queueStatus, {}),
    getBinaries: async (configuration) => (await call(firmwareRpc.getBinaries, { configuration })).artifacts,
    readArtifact: (configuration, file, offset, length) => call(firmwareRpc.readArtifact, { configuration, file, offset, length }),
  };
}

// ---- remote_build/submit_job, cancel_job, download_artifacts: builds sent to one receiver ----
// Served by the firmware service (its compile lane runs them), beside the other offloader commands
// (`kiln.firmware.offloader.*`, firmwareSubjects.offloaderCommand, as offloaderSubjects).

const remoteJobCommand = rpcFamily(firmwareSubjects.offloaderCommand);

export const remoteJobRpc = {
  submitJob: remoteJobCommand('submit_job', pb.SubmitRemoteJobRequest, pb.InstallResponse),
  cancelJob: remoteJobCommand('cancel_job', pb.RemoteJobRequest, pb.JobResponse),
  downloadArtifacts: remoteJobCommand('download_artifacts', pb.RemoteJobRequest, pb.RemoteArtifactsResponse),
} as const;

/** The targets remote_build/submit_job accepts. */
export const REMOTE_JOB_TARGETS = ['compile', 'install'] as const;
export type RemoteJobTarget = (typeof REMOTE_JOB_TARGETS)[number];

/** remote_build/download_artifacts answers with every image inline (base64): at most this many bytes in all. */
export const MAX_REMOTE_ARTIFACTS_BYTES = 16 * 1024 * 1024;
