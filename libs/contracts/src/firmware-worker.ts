import * as pb from './gen/kiln/firmware/v1/worker.js';
import { rpcMethod } from './rpc.js';

/**
 * Subjects of the compile-worker protocol (`kiln worker compile` ⇄ the firmware service). Worker ids
 * are single subject tokens (see WORKER_ID_PATTERN); job ids are the firmware's UUIDs.
 */
export const firmwareWorkerSubjects = {
  heartbeat: 'kiln.firmware.worker.heartbeat',
  stopped: 'kiln.firmware.worker.stopped',
  run: (workerId: string) => `kiln.firmware.worker.${workerId}.run`,
  cancel: (workerId: string) => `kiln.firmware.worker.${workerId}.cancel`,
  output: (jobId: string) => `kiln.firmware.worker.job.${jobId}.output`,
  exited: (jobId: string) => `kiln.firmware.worker.job.${jobId}.exited`,
} as const;

/** A worker id is one NATS subject token: no dots, no wildcards, no spaces. */
export const WORKER_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export const firmwareWorkerRpc = {
  run: (workerId: string) => rpcMethod(firmwareWorkerSubjects.run(workerId), pb.WorkerRunRequest, pb.WorkerRunReply),
  cancel: (workerId: string) => rpcMethod(firmwareWorkerSubjects.cancel(workerId), pb.WorkerCancelRequest, pb.WorkerCancelReply),
  output: (jobId: string) => rpcMethod(firmwareWorkerSubjects.output(jobId), pb.WorkerOutput, pb.WorkerOutputAck),
  exited: (jobId: string) => rpcMethod(firmwareWorkerSubjects.exited(jobId), pb.WorkerExited, pb.WorkerExitedAck),
} as const;
