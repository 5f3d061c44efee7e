import { Server, type sendUnaryData, type ServerReadableStream, type ServerUnaryCall, type ServerWritableStream } from '@grpc/grpc-js';
import { REMOTE_CHUNK_BYTES, remotePb as pb } from '@kiln/contracts';
import {
  BuildServiceService,
  isFinal,
  PairingServiceService,
  SessionServiceService,
  toGrpcStatus,
  type BuildServiceServer,
  type PairingServiceServer,
  type SessionServiceServer,
} from '@kiln/contracts/grpc';
import { disposable, KilnError } from '@kiln/core';
import type { Logger } from '@kiln/logging';
import { DEFAULT_STREAM_MAX_BYTES, streamLog } from '@kiln/streams';
import { peerFingerprint } from '@kiln/remote-identity';
import type { Build, BuildEvent } from './builds.js';
import type { Receiver } from './receiver.js';

type AuthedCall = Parameters<typeof peerFingerprint>[0] & { getPeer(): string };

export interface GrpcEndpoint {
  readonly address: string;
  close(): Promise<void>;
}

/**
 * The receiver's three gRPC services. Pairing is open to any TLS client (it can only preview and
 * ask); every build and session call first resolves the caller's approved identity from its client
 * certificate and is refused before anything else happens when there is none.
 */
export async function startReceiverGrpc(receiver: Receiver, listen: string, logger: Logger): Promise<GrpcEndpoint> {
  const approved = (call: AuthedCall): string => {
    try {
      return receiver.approvedPeer(peerFingerprint(call));
    } catch (err) {
      logger.warn({ peer: call.getPeer(), reason: (err as Error).message }, 'remote build call refused');
      throw err;
    }
  };

  function unary<Req, Res>(handler: (req: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>) {
    return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
      handler(call.request, call).then(
        (res) => callback(null, res),
        (err: unknown) => {
          if (!(err instanceof KilnError)) logger.error({ err }, 'receiver gRPC call failed');
          callback(toGrpcStatus(err));
        },
      );
    };
  }

  const pairing: PairingServiceServer = {
    previewIdentity: unary(async () => receiver.preview()),
    requestPair: unary(async (req: pb.RequestPairRequest, call) => receiver.requestPair(req, peerFingerprint(call))),
    pairStatus: unary(async (_req: pb.PairStatusRequest, call) => receiver.pairStatus(peerFingerprint(call))),
  };

  const build: BuildServiceServer = {
    hasBundle: unary(async (req: pb.HasBundleRequest, call) => {
      return { present: await receiver.bundles.has(approved(call), req.sha256) };
    }),
    submitBundle: (call: ServerReadableStream<pb.SubmitBundleRequest, pb.SubmitBundleResponse>, callback: sendUnaryData<pb.SubmitBundleResponse>) => {
      void receiveBundle(call, () => approved(call), receiver).then(
        (res) => callback(null, res),
        (err: unknown) => callback(toGrpcStatus(err)),
      );
    },
    startBuild: unary(async (req: pb.StartBuildRequest, call) => ({ build: (await receiver.builds.start(approved(call), req)).state() })),
    follow: (call: ServerWritableStream<pb.FollowRequest, pb.FollowResponse>) => {
      try {
        followBuild(call, receiver.builds.get(approved(call), call.request.buildId));
      } catch (err) {
        call.emit('error', toGrpcStatus(err));
      }
    },
    cancel: unary(async (req: pb.CancelRequest, call) => ({ build: (await receiver.builds.cancel(approved(call), req.buildId)).state() })),
    downloadArtifacts: (call: ServerWritableStream<pb.DownloadArtifactsRequest, pb.DownloadArtifactsResponse>) => {
      void sendArtifacts(call, receiver, () => approved(call)).catch((err: unknown) => call.emit('error', toGrpcStatus(err)));
    },
  };

  const session: SessionServiceServer = {
    queueStatus: (call: ServerWritableStream<pb.QueueStatusRequest, pb.QueueStatusResponse>) => {
      try {
        approved(call);
      } catch (err) {
        call.emit('error', toGrpcStatus(err));
        return;
      }
      const send = (): void => void call.write(receiver.queueStatus());
      send();
      const unsubscribe = receiver.onLaneChange(send);
      const heartbeat = setInterval(send, receiver.settings.heartbeatMs);
      call.on('cancelled', () => {
        clearInterval(heartbeat);
        unsubscribe();
      });
    },
  };

  const server = new Server();
  server.addService(PairingServiceService, pairing);
  server.addService(BuildServiceService, build);
  server.addService(SessionServiceService, session);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(listen, receiver.trust.serverCredentials(), (err, bound) =>
      err ? reject(new KilnError('unavailable', `receiver gRPC cannot listen on ${listen}: ${err.message}`, { listen })) : resolve(bound),
    );
  });
  const host = listen.slice(0, listen.lastIndexOf(':'));
  return {
    address: `${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        // Session streams never end by themselves.
        setTimeout(() => server.forceShutdown(), 1_000).unref();
      }),
  };
}

async function receiveBundle(
  call: ServerReadableStream<pb.SubmitBundleRequest, pb.SubmitBundleResponse>,
  authorize: () => string,
  receiver: Receiver,
): Promise<pb.SubmitBundleResponse> {
  const owner = authorize();
  let upload: Awaited<ReturnType<Receiver['bundles']['begin']>> | undefined;
  try {
    for await (const msg of call as AsyncIterable<pb.SubmitBundleRequest>) {
      const part = msg.part;
      if (part?.$case === 'header') {
        if (upload) throw new KilnError('invalid_message', 'bundle: a second header', {});
        upload = await receiver.bundles.begin(owner, part.value);
      } else if (part?.$case === 'data') {
        if (!upload) throw new KilnError('invalid_message', 'bundle: data before the header', {});
        await upload.write(part.value);
      }
    }
    if (!upload) throw new KilnError('invalid_message', 'bundle: no header', {});
    const stored = await upload.commit();
    upload = undefined;
    return stored;
  } finally {
    await upload?.abort();
  }
}

/** A follower's output may lag this far behind (queued plus what grpc-js holds for it) before it is dropped. */
const FOLLOW_MAX_BYTES = DEFAULT_STREAM_MAX_BYTES;

const eventBytes = (event: BuildEvent): number => (event.$case === 'output' ? event.value.lines.reduce((n, line) => n + line.length + 2, 16) : 64);

function followBuild(call: ServerWritableStream<pb.FollowRequest, pb.FollowResponse>, build: Build): void {
  const stream = streamLog<BuildEvent>({
    // A slow follower loses output lines (counted in first_seq gaps), never a state change: grpc-js
    // would otherwise buffer a flooding build's whole output for it.
    attach: (c) => {
      const listener = (event: BuildEvent): void => {
        if (event.$case === 'output') return void c.push(event);
        c.pushPriority(event);
        if (isFinal(event.value.status)) c.end();
      };
      build.listeners.add(listener);
      return disposable(() => build.listeners.delete(listener));
    },
    // Output first: a final state ends the stream on the client.
    snapshot: () => [
      ...(build.lines.length > 0 ? [{ $case: 'output' as const, value: { firstSeq: build.firstSeq, lines: [...build.lines] } }] : []),
      { $case: 'state' as const, value: build.state() },
    ],
    bytes: { max: FOLLOW_MAX_BYTES, sizeOf: eventBytes, downstream: () => call.writableLength },
    itemOf: (event) =>
      event.$case === 'output'
        ? { log: build.id, lines: [event.value.firstSeq, event.value.firstSeq + event.value.lines.length] }
        : { log: build.id, ...(isFinal(event.value.status) ? { last: true } : {}) },
    skipLines: (event, skip) => (event.$case === 'output' ? { $case: 'output', value: { firstSeq: event.value.firstSeq + skip, lines: event.value.lines.slice(skip) } } : event),
  });
  call.on('cancelled', () => stream[Symbol.dispose]());
  void (async () => {
    for await (const event of stream) {
      if (call.cancelled) return;
      if (!call.write({ event })) await drainedOrCancelled(call);
    }
    if (!call.cancelled) call.end();
  })().catch((err: unknown) => call.emit('error', toGrpcStatus(err)));
}

function drainedOrCancelled(call: ServerWritableStream<pb.FollowRequest, pb.FollowResponse>): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      call.off('drain', done);
      call.off('cancelled', done);
      resolve();
    };
    call.once('drain', done);
    call.once('cancelled', done);
  });
}

async function sendArtifacts(call: ServerWritableStream<pb.DownloadArtifactsRequest, pb.DownloadArtifactsResponse>, receiver: Receiver, authorize: () => string): Promise<void> {
  const build = receiver.builds.get(authorize(), call.request.buildId);
  const artifacts = await receiver.artifacts(build);
  const write = (msg: pb.DownloadArtifactsResponse): Promise<void> => new Promise((resolve) => (call.write(msg) ? resolve() : call.once('drain', () => resolve())));
  for (const artifact of artifacts) {
    await write({ part: { $case: 'header', value: { name: artifact.name, sizeBytes: artifact.data.length, sha256: artifact.sha256 } } });
    for (let offset = 0; offset < artifact.data.length; offset += REMOTE_CHUNK_BYTES) {
      if (call.cancelled) return;
      await write({ part: { $case: 'data', value: artifact.data.subarray(offset, offset + REMOTE_CHUNK_BYTES) } });
    }
  }
  call.end();
}
