import { jsonPreview, KilnError, nestingBeyond, type ErrorCode } from '@kiln/core';

export type MessageId = number | string;

export interface ClientFrame {
  command: string;
  message_id: MessageId;
  args: Record<string, unknown>;
}

/**
 * A result that already is JSON text (catalog replies are produced as JSON once by the catalog
 * service): spliced into the frame as is instead of being parsed and serialised again.
 */
export class RawJson {
  constructor(readonly text: string) {}
}

/** A frame as the text sent on the socket. */
export function serializeFrame(frame: ServerFrame): string {
  if ('result' in frame && frame.result instanceof RawJson) return `{"message_id":${JSON.stringify(frame.message_id)},"result":${frame.result.text}}`;
  return JSON.stringify(frame);
}

export type ServerFrame =
  | { message_id: MessageId; result: unknown }
  | { message_id: MessageId; event: string; data: unknown }
  | { message_id: MessageId | null; error_code: ErrorCode; details: { message: string } & Record<string, unknown> }
  | { event: 'server_info'; data: unknown };

/**
 * How deep a client frame may nest arrays and objects, the frame itself being level 1. Real frames
 * are 3 or 4 levels deep (`{args: {configurations: [name]}}`); the bound is checked right after
 * JSON.parse, before any code walks the value, so a small frame of 100,000 nested arrays is an
 * error frame and not a stack overflow in whatever inspects it next.
 */
export const MAX_FRAME_DEPTH = 32;

/**
 * A client frame as the upstream protocol defines it: `{command, message_id, args}`. Anything else
 * is `invalid_message`, with the message id echoed when one could be read so the client can match it.
 */
export function parseClientFrame(text: string): ClientFrame {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new KilnError('invalid_message', `frame is not JSON: ${(err as Error).message}`, { field: 'frame' });
  }
  const isObject = typeof raw === 'object' && raw !== null && !Array.isArray(raw);
  const tooDeep = nestingBeyond(raw, MAX_FRAME_DEPTH);
  if (tooDeep) {
    const inArgs = isObject && tooDeep[0] === 'args' && tooDeep.length > 1;
    const field = !isObject ? 'frame' : inArgs ? tooDeep[1]! : tooDeep[0]!;
    const error = new KilnError(inArgs ? 'invalid_args' : 'invalid_message', `${field}: nests arrays/objects deeper than the frame limit of ${MAX_FRAME_DEPTH} levels`, { field, limit: MAX_FRAME_DEPTH });
    throw isObject ? withId(error, (raw as Record<string, unknown>)['message_id']) : error;
  }
  if (!isObject) {
    throw new KilnError('invalid_message', 'frame must be a JSON object {command, message_id, args}', { field: 'frame' });
  }
  const frame = raw as Record<string, unknown>;
  const id = frame['message_id'];
  if (!isMessageId(id)) {
    throw new KilnError('invalid_message', 'message_id must be an integer or a non-empty string of at most 128 characters', { field: 'message_id', value: truncate(id) });
  }
  const command = frame['command'];
  if (typeof command !== 'string' || command.length === 0 || command.length > 128) {
    throw withId(new KilnError('invalid_message', 'command must be a non-empty string', { field: 'command', value: truncate(command) }), id);
  }
  const args = frame['args'] ?? {};
  if (typeof args !== 'object' || args === null || Array.isArray(args)) {
    throw withId(new KilnError('invalid_args', 'args must be an object', { field: 'args', value: truncate(args) }), id);
  }
  return { command, message_id: id, args: args as Record<string, unknown> };
}

function isMessageId(id: unknown): id is MessageId {
  return (typeof id === 'number' && Number.isSafeInteger(id)) || (typeof id === 'string' && id.length > 0 && id.length <= 128);
}

/** The error frame for any failure; unknown errors are internal_error without leaking internals. */
export function errorFrame(messageId: MessageId | null, err: unknown): ServerFrame {
  const error = err instanceof KilnError ? err : new KilnError('internal_error', 'internal error', {});
  return { message_id: messageId, error_code: error.code, details: { message: error.message, ...safeDetails(error.details) } };
}

export class FrameError extends KilnError {
  constructor(
    readonly messageId: MessageId,
    cause: KilnError,
  ) {
    super(cause.code, cause.message, cause.details);
  }
}

function withId(err: KilnError, id: unknown): KilnError {
  return isMessageId(id) ? new FrameError(id, err) : err;
}

/**
 * Bad values are echoed to help the client, but never at length: a container as at most 200
 * characters of its JSON, rendered without recursion (an error frame must be sendable whatever
 * value a handler put in its details).
 */
function truncate(value: unknown): unknown {
  if (typeof value === 'string') return value.length > 200 ? `${value.slice(0, 200)}…` : value;
  if (typeof value === 'object' && value !== null) return jsonPreview(value, 200);
  if (typeof value === 'bigint' || typeof value === 'function' || typeof value === 'symbol') return String(value).slice(0, 200);
  return value;
}

function safeDetails(details: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(details)) out[k] = truncate(v);
  return out;
}
