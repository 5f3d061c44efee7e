import type { BinaryReader, BinaryWriter } from '@bufbuild/protobuf/wire';
import { KilnError } from '@kiln/core';

/** The encode/decode pair ts-proto generates for every message. */
export interface MessageCodec<T> {
  encode(message: T, writer?: BinaryWriter): BinaryWriter;
  decode(input: BinaryReader | Uint8Array, length?: number): T;
}

export function encode<T>(codec: MessageCodec<T>, message: T): Uint8Array {
  return codec.encode(message).finish();
}

/** Decode a message received on `subject`; bytes that are not one → invalid_message. */
export function decodeOrThrow<T>(codec: MessageCodec<T>, data: Uint8Array, subject: string): T {
  try {
    return codec.decode(data);
  } catch (err) {
    throw new KilnError('invalid_message', `undecodable message on ${subject}: ${(err as Error).message}`, { subject, bytes: data.length });
  }
}
