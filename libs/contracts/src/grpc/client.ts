import {
  makeGenericClientConstructor,
  type CallOptions,
  type ChannelCredentials,
  type Client,
  type ClientOptions,
  type ClientReadableStream,
  type ClientUnaryCall,
  type ClientWritableStream,
  type Metadata,
  type ServiceDefinition,
  type ServiceError,
} from '@grpc/grpc-js';

type Callback<Res> = (err: ServiceError | null, res: Res) => void;

/** The call shapes Kiln uses of each method kind (grpc-js accepts more overloads at run time). */
type UnaryCall<Req, Res> = (request: Req, metadata: Metadata, options: Partial<CallOptions>, callback: Callback<Res>) => ClientUnaryCall;
type ServerStreamCall<Req, Res> = (request: Req, options?: Partial<CallOptions>) => ClientReadableStream<Res>;
type ClientStreamCall<Req, Res> = (metadata: Metadata, options: Partial<CallOptions>, callback: Callback<Res>) => ClientWritableStream<Req>;

interface GrpcMethod<Req, Res> {
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  requestSerialize(value: Req): Buffer;
  responseDeserialize(value: Buffer): Res;
}

type CallOf<M> =
  M extends GrpcMethod<infer Req, infer Res>
    ? M['requestStream'] extends true
      ? ClientStreamCall<Req, Res>
      : M['responseStream'] extends true
        ? ServerStreamCall<Req, Res>
        : UnaryCall<Req, Res>
    : never;

/** A grpc-js client of `Definition` (a generated `<Name>Service`), typed from its method definitions. */
export type GrpcClient<Definition> = Client & { [K in keyof Definition]: CallOf<Definition[K]> };

export type GrpcClientConstructor<Definition> = new (address: string, credentials: ChannelCredentials, options?: Partial<ClientOptions>) => GrpcClient<Definition>;

/**
 * The client class of a generated grpc-js service definition. The generated code carries no client
 * (outputClientImpl=false keeps @grpc/grpc-js out of every module that only needs messages), so the
 * gRPC entry point builds it here.
 */
export function grpcClientConstructor<Definition extends object>(definition: Definition, serviceName: string): GrpcClientConstructor<Definition> {
  return makeGenericClientConstructor(definition as unknown as ServiceDefinition, serviceName) as unknown as GrpcClientConstructor<Definition>;
}
