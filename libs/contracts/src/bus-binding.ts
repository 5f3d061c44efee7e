import type { Bus, BusSubscription } from '@kiln/bus';
import { decodeOrThrow, encode, type MessageCodec } from './codec.js';
import { busMethodSubject } from './subjects.js';

/** Default deadline for a bus call: long enough for a disk read under load, short enough to surface a dead peer. */
export const DEFAULT_RPC_TIMEOUT_MS = 10_000;

/** A method as ts-proto's generic definitions declare it (`outputServices=generic-definitions`). */
interface MethodDefinition {
  /** The proto name, e.g. `InstallBulk`. */
  readonly name: string;
  readonly requestType: object;
  readonly responseType: object;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
}

/** A generated `<Name>Definition`: what a bus client or server is built from. */
export interface BusServiceDefinition {
  readonly fullName: string;
  readonly methods: { readonly [key: string]: MethodDefinition };
}

type Methods<D extends BusServiceDefinition> = D['methods'];
/** The bus carries unary methods only; streaming ones (gRPC only) are left out of clients and servers. */
type UnaryName<D extends BusServiceDefinition> = {
  [K in keyof Methods<D>]: Methods<D>[K] extends { requestStream: false; responseStream: false } ? K : never;
}[keyof Methods<D>];
type RequestOf<M> = M extends { requestType: MessageCodec<infer T> } ? T : never;
type ResponseOf<M> = M extends { responseType: MessageCodec<infer T> } ? T : never;

export interface BusCallOptions {
  /** Deadline of this call; default the client's, which defaults to DEFAULT_RPC_TIMEOUT_MS. */
  timeoutMs?: number;
}

export interface BusBindOptions {
  /** Deadline of every call of this client (a call may still give its own). */
  timeoutMs?: number;
  /** The `{scope}` token of a scoped service's subjects (a worker id, a job id, a service name). */
  scope?: string;
}

/**
 * A service's methods over the bus: each takes its request message and resolves to its response
 * message. Fields a request leaves out (or undefined) go out at their proto defaults, as on the wire.
 */
export type BusClient<D extends BusServiceDefinition> = {
  readonly [K in UnaryName<D>]: (request: Partial<RequestOf<Methods<D>[K]>>, options?: BusCallOptions) => Promise<ResponseOf<Methods<D>[K]>>;
};

/** What serves a service: one method per rpc (a missing one is a type error). May be a class instance. */
export type BusImplementation<D extends BusServiceDefinition> = {
  [K in UnaryName<D>]: (request: RequestOf<Methods<D>[K]>) => Promise<ResponseOf<Methods<D>[K]>> | ResponseOf<Methods<D>[K]>;
};

interface UnaryMethod {
  readonly key: string;
  readonly subject: string;
  readonly request: MessageCodec<unknown>;
  readonly response: MessageCodec<unknown>;
}

function unaryMethods(definition: BusServiceDefinition, scope: string | undefined): UnaryMethod[] {
  return Object.entries(definition.methods)
    .filter(([, m]) => !m.requestStream && !m.responseStream)
    .map(([key, m]) => ({
      key,
      subject: busMethodSubject(definition.fullName, m.name, scope),
      request: m.requestType as MessageCodec<unknown>,
      response: m.responseType as MessageCodec<unknown>,
    }));
}

/** `request` with every field it leaves out (or leaves undefined) at its proto default: what decoding no bytes yields. */
function withDefaults(codec: MessageCodec<unknown>, request: object): unknown {
  const message = codec.decode(new Uint8Array(0)) as Record<string, unknown>;
  for (const [field, value] of Object.entries(request)) if (value !== undefined) message[field] = value;
  return message;
}

/** The subject of one method (its generated key, e.g. `installBulk`): for raw bus access in tests and tools. */
export function busSubject<D extends BusServiceDefinition>(definition: D, method: UnaryName<D> & string, scope?: string): string {
  return busMethodSubject(definition.fullName, definition.methods[method]!.name, scope);
}

/** A typed client of `definition` on `bus`. Subjects come from the definition (see subjects.ts). */
export function busClient<D extends BusServiceDefinition>(bus: Bus, definition: D, options: BusBindOptions = {}): BusClient<D> {
  const client: Record<string, (request: object, callOptions?: BusCallOptions) => Promise<unknown>> = {};
  for (const method of unaryMethods(definition, options.scope)) {
    client[method.key] = async (request, callOptions = {}) => {
      const timeoutMs = callOptions.timeoutMs ?? options.timeoutMs ?? DEFAULT_RPC_TIMEOUT_MS;
      const reply = await bus.request(method.subject, encode(method.request, withDefaults(method.request, request)), { timeoutMs });
      return decodeOrThrow(method.response, reply.data, method.subject);
    };
  }
  return client as BusClient<D>;
}

/**
 * Serve every unary method of `definition` from `implementation`: requests are decoded (undecodable →
 * invalid_message), the method is called, its reply encoded; a KilnError it throws reaches the caller
 * with its code and details. Dispose the returned subscriptions to stop serving.
 */
export function serveBus<D extends BusServiceDefinition>(bus: Bus, definition: D, implementation: BusImplementation<D>, options: Pick<BusBindOptions, 'scope'> = {}): BusSubscription[] {
  const handlers = implementation as unknown as Record<string, (request: unknown) => unknown>;
  return unaryMethods(definition, options.scope).map((method) =>
    bus.respond(method.subject, async (msg) => {
      const request = decodeOrThrow(method.request, msg.data, method.subject);
      // Called as a method: an implementation may be a class instance.
      return encode(method.response, await handlers[method.key]!.call(implementation, request));
    }),
  );
}
