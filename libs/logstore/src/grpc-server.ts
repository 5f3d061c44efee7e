import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream } from '@grpc/grpc-js';
import { logStorePb as pb } from '@kiln/contracts';
import { LogStoreServiceService, toGrpcStatus, type LogStoreServiceServer } from '@kiln/contracts/grpc';
import { KilnError } from '@kiln/core';
import type { Logger } from '@kiln/logging';
import { MAX_BUS_PAYLOAD_BYTES } from './bus-binding.js';
import type { LogStore } from './log-store.js';

export interface GrpcEndpoint {
  /** host:port actually bound (port 0 resolved). */
  readonly address: string;
  close(): Promise<void>;
}

function unary<Req, Res>(logger: Logger, handler: (req: Req) => Promise<Res>) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
    handler(call.request).then(
      (res) => callback(null, res),
      (err: unknown) => {
        if (!(err instanceof KilnError)) logger.error({ err }, 'gRPC call failed');
        callback(toGrpcStatus(err));
      },
    );
  };
}

/** Serve the store as kiln.logstore.v1.LogStoreService; Follow streams with backpressure (waits for 'drain'). */
export async function startLogStoreGrpc(store: LogStore, listen: string, logger: Logger): Promise<GrpcEndpoint> {
  const server = new Server();
  const impl: LogStoreServiceServer = {
    append: unary(logger, (req: pb.AppendRequest) => store.append(req.jobId, req.lines)),
    closeLog: unary(logger, (req: pb.CloseLogRequest) => store.close(req.jobId)),
    read: unary(logger, (req: pb.ReadRequest) => store.read(req.jobId, req, MAX_BUS_PAYLOAD_BYTES)),
    delete: unary(logger, async (req: pb.DeleteRequest) => ({ deleted: await store.delete(req.jobId) })),
    list: unary(logger, async () => ({ logs: await store.list() })),
    follow: (call: ServerWritableStream<pb.FollowRequest, pb.FollowResponse>) => {
      void streamFollow(store, call);
    },
  };
  server.addService(LogStoreServiceService, impl);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(listen, ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(new KilnError('unavailable', `logstore gRPC cannot listen on ${listen}: ${err.message}`, { listen })) : resolve(bound),
    );
  });
  const host = listen.slice(0, listen.lastIndexOf(':'));
  return {
    address: `${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        // Open follow streams would hold a graceful shutdown forever.
        setTimeout(() => server.forceShutdown(), 1_000).unref();
      }),
  };
}

async function streamFollow(store: LogStore, call: ServerWritableStream<pb.FollowRequest, pb.FollowResponse>): Promise<void> {
  let stream;
  try {
    stream = store.follow(call.request.jobId, { fromSeq: call.request.fromSeq });
  } catch (err) {
    call.emit('error', toGrpcStatus(err));
    return;
  }
  const cancel = (): void => stream[Symbol.dispose]();
  call.on('cancelled', cancel);
  try {
    for await (const event of stream) {
      if (!call.write({ event })) await new Promise((resolve) => call.once('drain', resolve));
      if (call.cancelled) break;
    }
    call.end();
  } catch (err) {
    // grpc-js ends a server stream with a status when 'error' is emitted on the call.
    call.emit('error', toGrpcStatus(err));
  } finally {
    call.off('cancelled', cancel);
    stream[Symbol.dispose]();
  }
}
