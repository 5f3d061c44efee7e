import type { Bus, BusSubscription } from '@kiln/bus';
import { KilnError } from '@kiln/core';
import { encode, type MessageCodec } from './codec.js';

/** One request/reply method on the bus: a subject and the proto messages it carries. */
export interface RpcMethod<Req, Res> {
  readonly subject: string;
  readonly request: MessageCodec<Req>;
  readonly response: MessageCodec<Res>;
}

export function rpcMethod<Req, Res>(subject: string, request: MessageCodec<Req>, response: MessageCodec<Res>): RpcMethod<Req, Res> {
  return { subject, request, response };
}

/** Methods whose subjects follow one scheme: the returned maker is rpcMethod on `subjectOf(name)`. */
export function rpcFamily(subjectOf: (name: string) => string) {
  return <Req, Res>(name: string, request: MessageCodec<Req>, response: MessageCodec<Res>): RpcMethod<Req, Res> => rpcMethod(subjectOf(name), request, response);
}

/** Default deadline for a bus call: long enough for a disk read under load, short enough to surface a dead peer. */
export const DEFAULT_RPC_TIMEOUT_MS = 10_000;

export async function callRpc<Req, Res>(
  bus: Bus,
  method: RpcMethod<Req, Res>,
  request: Req,
  timeoutMs = DEFAULT_RPC_TIMEOUT_MS,
): Promise<Res> {
  const reply = await bus.request(method.subject, encode(method.request, request), { timeoutMs });
  return decodeOrThrow(method.response, reply.data, method.subject);
}

/** Serve a method; a handler's KilnError reaches the caller with its code and details. */
export function serveRpc<Req, Res>(
  bus: Bus,
  method: RpcMethod<Req, Res>,
  handler: (request: Req) => Promise<Res> | Res,
): BusSubscription {
  return bus.respond(method.subject, async (msg) => {
    const request = decodeOrThrow(method.request, msg.data, method.subject);
    return encode(method.response, await handler(request));
  });
}

export function decodeOrThrow<T>(codec: MessageCodec<T>, data: Uint8Array, subject: string): T {
  try {
    return codec.decode(data);
  } catch (err) {
    throw new KilnError('invalid_message', `undecodable message on ${subject}: ${(err as Error).message}`, { subject, bytes: data.length });
  }
}
