import { isErrorCode, KilnError, toKilnError, type ErrorDetails } from '@kiln/core';

/**
 * How a responder's failure travels to the requester. On NATS the text goes into this header of an
 * empty reply; the in-process bus passes the same text through the same encode/decode, so a
 * requester sees exactly the same error (e.g. details survive only as far as JSON takes them).
 */
export const ERROR_HEADER = 'Kiln-Error';

export function encodeError(err: unknown): string {
  const { code, message, details } = toKilnError(err);
  try {
    return JSON.stringify({ code, message, details });
  } catch {
    // Unserialisable details (cycles, bigint) must not cost the requester the code and message.
    return JSON.stringify({ code, message, details: { detailsDropped: true } });
  }
}

/** Never throws: anything malformed or unknown becomes internal_error rather than a crash or a forged code. */
export function decodeError(text: string, subject: string): KilnError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return new KilnError('internal_error', `malformed error reply on ${subject}`, { subject });
  }
  if (!isRecord(parsed)) return new KilnError('internal_error', `malformed error reply on ${subject}`, { subject });
  const code = typeof parsed['code'] === 'string' && isErrorCode(parsed['code']) ? parsed['code'] : 'internal_error';
  const message = typeof parsed['message'] === 'string' ? parsed['message'] : `request to ${subject} failed`;
  const details: ErrorDetails = isRecord(parsed['details']) ? parsed['details'] : {};
  return new KilnError(code, message, details);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
