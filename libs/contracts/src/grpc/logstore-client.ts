import { credentials, Metadata, type CallOptions, type ClientReadableStream, type ClientUnaryCall, type ServiceError } from '@grpc/grpc-js';
import { assertSafeId } from '@kiln/core';
import { streamEvents, type EventStream } from '@kiln/streams';
import * as pb from '../gen/kiln/logstore/v1/logstore.js';
import { grpcClientConstructor } from './client.js';
import { deadline, fromGrpcError } from './status.js';
import type { FollowOptions, LogFollowEvent, LogStoreApi } from '../logstore.js';

const LogStoreServiceClient = grpcClientConstructor(pb.LogStoreServiceService, 'kiln.logstore.v1.LogStoreService');

export interface GrpcClientOptions {
  deadlineMs?: number;
}

/**
 * The log store over gRPC (loopback or a trusted network; TLS arrives with remote builds).
 * Unary calls carry a deadline; a follow is a server stream ended by the server's `closed` event
 * or by disposing the stream.
 */
export function createLogStoreGrpcClient(address: string, options: GrpcClientOptions = {}): LogStoreApi & { shutdown(): void } {
  const client = new LogStoreServiceClient(address, credentials.createInsecure());
  const unary = <Req, Res>(
    method: (req: Req, metadata: Metadata, options: Partial<CallOptions>, callback: (err: ServiceError | null, res: Res) => void) => ClientUnaryCall,
    req: Req,
  ) =>
    new Promise<Res>((resolve, reject) => {
      method.call(client, req, new Metadata(), { deadline: deadline(options.deadlineMs) }, (err, res) => (err ? reject(fromGrpcError(err)) : resolve(res)));
    });
  return {
    append: (jobId, lines) => unary(client.append, { jobId, lines: [...lines] }),
    close: (jobId) => unary(client.closeLog, { jobId }),
    read: (jobId, range = {}) => unary(client.read, { jobId, offset: range.offset ?? 0, limit: range.limit ?? 0, tail: range.tail ?? 0 }),
    follow(jobId: string, followOptions: FollowOptions = {}): EventStream<LogFollowEvent> {
      assertSafeId('job_id', jobId);
      let call: ClientReadableStream<pb.FollowResponse> | undefined;
      return streamEvents<LogFollowEvent>({
        attach(controls) {
          call = client.follow({ jobId, fromSeq: followOptions.fromSeq ?? 0 });
          call.on('data', (msg: pb.FollowResponse) => {
            if (!msg.event) return;
            if (msg.event.$case === 'closed') {
              controls.pushPriority(msg.event);
              controls.end();
            } else controls.pushOrTerminate(msg.event);
          });
          call.on('error', (err) => controls.fail(fromGrpcError(err)));
          call.on('end', () => controls.end());
          return { [Symbol.dispose]: () => call?.cancel() };
        },
        ...(followOptions.signal ? { signal: followOptions.signal } : {}),
      });
    },
    delete: async (jobId) => (await unary(client.delete, { jobId })).deleted,
    list: async () => (await unary(client.list, {})).logs,
    shutdown: () => client.close(),
  } as LogStoreApi & { shutdown(): void };
}
