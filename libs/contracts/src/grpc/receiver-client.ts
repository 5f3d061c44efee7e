import { createHash } from 'node:crypto';
import { Channel, Metadata, type CallOptions, type ClientReadableStream, type ClientUnaryCall, type ServiceError } from '@grpc/grpc-js';
import { assertConfigurationName, isArtifactName, KilnError } from '@kiln/core';
import { parsePin, pinMismatch, pinnedChannelCredentials, probePeerCertificate, type PeerIdentity } from '@kiln/remote-identity';
import { streamEvents, type EventStream } from '@kiln/streams';
import * as pb from '../gen/kiln/remote/v1/remote.js';
import { grpcClientConstructor, type GrpcClient } from './client.js';
import { REMOTE_CHUNK_BYTES, REMOTE_PROTOCOL_VERSION } from '../receiver.js';
import { deadline, fromGrpcError } from './status.js';

export interface ReceiverPreview {
  /** The fingerprint taken from the TLS handshake: show it for an out-of-band check, then pin it. */
  pin: string;
  identity: pb.PreviewIdentityResponse;
}

export interface ReceiverClientOptions {
  /** host:port of the receiver's gRPC endpoint. */
  address: string;
  /** This offloader's identity (its certificate is what the receiver approves). */
  identity: PeerIdentity;
  /** The receiver's confirmed fingerprint; every connection is refused unless the receiver presents it. */
  pin: string;
  /** Deadline of unary calls. */
  deadlineMs?: number;
  /** Refuse a download whose artifacts add up to more than this. Default 64 MiB. */
  maxArtifactBytes?: number;
}

export interface DownloadedArtifact {
  name: string;
  data: Buffer;
  sha256: string;
}

export type BuildEvent = NonNullable<pb.FollowResponse['event']>;

export interface ReceiverClient {
  previewIdentity(): Promise<pb.PreviewIdentityResponse>;
  requestPair(options?: { pairingKey?: string }): Promise<pb.RequestPairResponse>;
  pairStatus(): Promise<pb.PairStatusResponse>;
  hasBundle(sha256: string): Promise<boolean>;
  /** Content-addressed: asks first and sends only a bundle the receiver does not have. */
  submitBundle(bundle: Uint8Array): Promise<{ sha256: string; sent: boolean }>;
  startBuild(request: pb.StartBuildRequest): Promise<pb.BuildState>;
  /** State and output of a build: history first, then live, ending after the final state. */
  follow(buildId: string, options?: { signal?: AbortSignal }): EventStream<BuildEvent>;
  cancel(buildId: string): Promise<pb.BuildState>;
  /** Every artifact of a finished build, each checked against its announced size and SHA-256. */
  downloadArtifacts(buildId: string): Promise<DownloadedArtifact[]>;
  /** The receiver's compile-lane status: at once, on changes and as a heartbeat. */
  queueStatus(options?: { signal?: AbortSignal }): EventStream<pb.QueueStatusResponse>;
  close(): void;
}

const DEFAULT_MAX_ARTIFACT_BYTES = 64 * 1024 * 1024;
const FLOW_CONTROL_WINDOW_BYTES = 4 * 1024 * 1024;

export const sha256Hex = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/**
 * First contact with a receiver: fetch its certificate, then ask who it is over a connection pinned
 * to that certificate. Nothing is trusted yet: the caller shows `pin` for the person to compare with
 * the receiver's own display before calling requestPair.
 */
export async function previewReceiver(address: string, identity: PeerIdentity, deadlineMs?: number): Promise<ReceiverPreview> {
  const peer = await probePeerCertificate(address, identity);
  const client = createReceiverClient({ address, identity, pin: peer.fingerprint, ...(deadlineMs ? { deadlineMs } : {}) });
  try {
    const info = await client.previewIdentity();
    if (info.fingerprint !== peer.fingerprint) throw pinMismatch(info.fingerprint, peer.fingerprint);
    return { pin: peer.fingerprint, identity: info };
  } finally {
    client.close();
  }
}

const PairingServiceClient = grpcClientConstructor(pb.PairingServiceService, 'kiln.remote.v1.PairingService');
const BuildServiceClient = grpcClientConstructor(pb.BuildServiceService, 'kiln.remote.v1.BuildService');
const SessionServiceClient = grpcClientConstructor(pb.SessionServiceService, 'kiln.remote.v1.SessionService');

type Unary<Req, Res> = (req: Req, metadata: Metadata, options: Partial<CallOptions>, callback: (err: ServiceError | null, res: Res) => void) => ClientUnaryCall;

interface Stubs {
  channel: Channel;
  pairing: GrpcClient<pb.PairingServiceService>;
  build: GrpcClient<pb.BuildServiceService>;
  session: GrpcClient<pb.SessionServiceService>;
}

/** A client for one receiver, pinned to `pin`. Connects lazily (a TLS probe, then one gRPC channel). */
export function createReceiverClient(options: ReceiverClientOptions): ReceiverClient {
  const pin = parsePin('pin', options.pin);
  const maxArtifactBytes = options.maxArtifactBytes ?? DEFAULT_MAX_ARTIFACT_BYTES;
  let stubs: Promise<Stubs> | undefined;
  let closed = false;

  const connect = (): Promise<Stubs> => {
    if (closed) return Promise.reject(new KilnError('cancelled', 'receiver client closed', { address: options.address }));
    stubs ??= (async () => {
      // The probe yields the certificate to anchor on; pinnedChannelCredentials re-checks the pin in
      // every handshake, so a receiver that changes its key later is refused too.
      const peer = await probePeerCertificate(options.address, options.identity);
      if (peer.fingerprint !== pin) throw pinMismatch(pin, peer.fingerprint);
      const creds = pinnedChannelCredentials(options.identity, { certPem: peer.certPem, fingerprint: pin });
      // One connection for the three services.
      // The certificate names a peer id, not a host, and SNI must not carry an IP address (Node
      // warns): a fixed server name; checkServerIdentity compares the pin instead of the name.
      const channel = new Channel(options.address, creds, {
        'grpc.ssl_target_name_override': 'kiln-receiver',
        // Artifacts are megabytes: HTTP/2's default 64 KiB receive window stalls the sender every few chunks.
        'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW_BYTES,
      });
      const shared = { channelOverride: channel };
      return {
        channel,
        pairing: new PairingServiceClient(options.address, creds, shared),
        build: new BuildServiceClient(options.address, creds, shared),
        session: new SessionServiceClient(options.address, creds, shared),
      };
    })();
    stubs.catch(() => (stubs = undefined));
    return stubs;
  };

  /** A pending peer's certificate becomes trusted for NEW connections only: reconnect after requesting. */
  const reconnect = (): void => {
    const old = stubs;
    stubs = undefined;
    void old?.then((s) => s.channel.close(), () => undefined);
  };

  async function unary<C, Req, Res>(pick: (s: Stubs) => C, method: (client: C) => Unary<Req, Res>, req: Req): Promise<Res> {
    const s = await connect();
    const client = pick(s);
    return new Promise<Res>((resolve, reject) => {
      method(client).call(client, req, new Metadata(), { deadline: deadline(options.deadlineMs) }, (err, res) => (err ? reject(fromGrpcError(err)) : resolve(res)));
    });
  }

  function serverStream<T, E>(open: (s: Stubs) => ClientReadableStream<T>, map: (msg: T) => { item?: E; last?: boolean }, signal?: AbortSignal): EventStream<E> {
    let call: ClientReadableStream<T> | undefined;
    let disposed = false;
    return streamEvents<E>({
      attach(controls) {
        connect().then(
          (s) => {
            if (disposed) return;
            call = open(s);
            call.on('data', (msg: T) => {
              try {
                const { item, last } = map(msg);
                if (item !== undefined) controls.pushPriority(item);
                if (last) controls.end();
              } catch (err) {
                call?.cancel();
                controls.fail(err as Error);
              }
            });
            call.on('error', (err: ServiceError) => controls.fail(fromGrpcError(err)));
            call.on('end', () => controls.end());
          },
          (err: unknown) => controls.fail(err instanceof Error ? err : new Error(String(err))),
        );
        return {
          [Symbol.dispose]: () => {
            disposed = true;
            call?.cancel();
          },
        };
      },
      ...(signal ? { signal } : {}),
    });
  }

  const hasBundle = async (sha256: string): Promise<boolean> => (await unary((s) => s.build, (c) => c.hasBundle, { sha256 })).present;

  return {
    previewIdentity: () => unary((s) => s.pairing, (c) => c.previewIdentity, {}),
    async requestPair(pairOptions = {}) {
      const request: pb.RequestPairRequest = {
        dashboardId: options.identity.dashboardId,
        name: options.identity.name,
        certificatePem: options.identity.certPem,
        receiverFingerprint: pin,
        pairingKey: pairOptions.pairingKey ?? '',
      };
      let res = await unary((s) => s.pairing, (c) => c.requestPair, request);
      if (res.state === pb.PairState.PAIR_STATE_PROVE_KEY) {
        // The receiver now trusts our certificate in the handshake: a new connection proves we hold its key.
        reconnect();
        res = await unary((s) => s.pairing, (c) => c.requestPair, request);
        if (res.state === pb.PairState.PAIR_STATE_PROVE_KEY) {
          reconnect();
          throw new KilnError('unavailable', `receiver ${options.address} did not accept this offloader's certificate in the handshake (too many pairing requests at once?); try again`, {
            address: options.address,
          });
        }
      }
      // A pending peer's certificate is trusted by new connections only.
      reconnect();
      return res;
    },
    pairStatus: () => unary((s) => s.pairing, (c) => c.pairStatus, {}),
    hasBundle,
    async submitBundle(bundle) {
      const sha256 = sha256Hex(bundle);
      if (await hasBundle(sha256)) return { sha256, sent: false };
      const s = await connect();
      const res = await new Promise<pb.SubmitBundleResponse>((resolve, reject) => {
        const call = s.build.submitBundle(new Metadata(), { deadline: deadline(Math.max(options.deadlineMs ?? 0, 120_000)) }, (err, out) =>
          err ? reject(fromGrpcError(err)) : resolve(out),
        );
        void (async () => {
          const write = (msg: pb.SubmitBundleRequest): Promise<void> =>
            new Promise((done) => (call.write(msg) ? done() : call.once('drain', () => done())));
          await write({ part: { $case: 'header', value: { sha256, sizeBytes: bundle.length } } });
          for (let offset = 0; offset < bundle.length; offset += REMOTE_CHUNK_BYTES) {
            await write({ part: { $case: 'data', value: Buffer.from(bundle.subarray(offset, offset + REMOTE_CHUNK_BYTES)) } });
          }
          call.end();
        })();
      });
      if (res.sha256 !== sha256) throw new KilnError('internal_error', `receiver stored bundle ${res.sha256}, expected ${sha256}`, { sha256, stored: res.sha256 });
      return { sha256, sent: true };
    },
    async startBuild(request) {
      assertConfigurationName('configuration', request.configuration);
      const res = await unary((s) => s.build, (c) => c.startBuild, request);
      if (!res.build) throw new KilnError('internal_error', 'receiver answered StartBuild without a build', {});
      return res.build;
    },
    follow: (buildId, followOptions = {}) =>
      serverStream(
        (s) => s.build.follow({ buildId }),
        (msg: pb.FollowResponse) => ({ item: msg.event, last: msg.event?.$case === 'state' && isFinal(msg.event.value.status) }),
        followOptions.signal,
      ),
    async cancel(buildId) {
      const res = await unary((s) => s.build, (c) => c.cancel, { buildId });
      if (!res.build) throw new KilnError('internal_error', 'receiver answered Cancel without a build', {});
      return res.build;
    },
    async downloadArtifacts(buildId) {
      const s = await connect();
      return receiveArtifacts(s.build.downloadArtifacts({ buildId }, { deadline: deadline(Math.max(options.deadlineMs ?? 0, 120_000)) }), maxArtifactBytes);
    },
    queueStatus: (statusOptions = {}) =>
      serverStream(
        (s) => s.session.queueStatus({}),
        (msg: pb.QueueStatusResponse) => {
          if (msg.protocolVersion !== REMOTE_PROTOCOL_VERSION) {
            throw new KilnError('failed_precondition', `receiver speaks protocol ${msg.protocolVersion}, this offloader ${REMOTE_PROTOCOL_VERSION}`, {});
          }
          return { item: msg };
        },
        statusOptions.signal,
      ),
    close() {
      closed = true;
      reconnect();
    },
  };
}

export function isFinal(status: pb.BuildStatus): boolean {
  return status === pb.BuildStatus.BUILD_STATUS_COMPLETED || status === pb.BuildStatus.BUILD_STATUS_FAILED || status === pb.BuildStatus.BUILD_STATUS_CANCELLED;
}

/** Collect header/data parts into files; refuse a file that is not what its header announced. */
async function receiveArtifacts(call: ClientReadableStream<pb.DownloadArtifactsResponse>, maxBytes: number): Promise<DownloadedArtifact[]> {
  const files: DownloadedArtifact[] = [];
  let current: { header: pb.ArtifactHeader; chunks: Buffer[]; size: number } | undefined;
  let total = 0;
  const finish = (): void => {
    if (!current) return;
    const data = Buffer.concat(current.chunks);
    const { name, sizeBytes, sha256 } = current.header;
    if (data.length !== sizeBytes) throw new KilnError('internal_error', `artifact ${name}: received ${data.length} bytes, announced ${sizeBytes}`, { name });
    const got = sha256Hex(data);
    if (got !== sha256) throw new KilnError('internal_error', `artifact ${name}: SHA-256 mismatch (announced ${sha256}, received ${got})`, { name, expected: sha256, got });
    files.push({ name, data, sha256 });
    current = undefined;
  };
  try {
    for await (const msg of call as AsyncIterable<pb.DownloadArtifactsResponse>) {
      const part = msg.part;
      if (!part) continue;
      if (part.$case === 'header') {
        finish();
        if (!isArtifactName(part.value.name)) {
          throw new KilnError('invalid_message', `artifact name ${JSON.stringify(part.value.name)} is not a bare file name`, { name: part.value.name });
        }
        total += part.value.sizeBytes;
        if (total > maxBytes) throw new KilnError('invalid_message', `artifacts exceed the ${maxBytes}-byte download cap`, { maxBytes, name: part.value.name });
        current = { header: part.value, chunks: [], size: 0 };
      } else {
        if (!current) throw new KilnError('invalid_message', 'artifact data before any header', {});
        current.size += part.value.length;
        if (current.size > current.header.sizeBytes) {
          throw new KilnError('internal_error', `artifact ${current.header.name}: more bytes than the announced ${current.header.sizeBytes}`, { name: current.header.name });
        }
        current.chunks.push(Buffer.from(part.value));
      }
    }
    finish();
  } catch (err) {
    call.cancel();
    throw err instanceof KilnError ? err : fromGrpcError(err as ServiceError);
  }
  return files;
}
