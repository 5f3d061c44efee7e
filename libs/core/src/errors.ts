import { jsonPreview } from './json-limits.js';

/**
 * One error family for all of Kiln. `code` is the wire error code the API returns
 * (upstream device-builder names), `details` carries the offending value so a caller
 * can see what was wrong without reading logs.
 */
export const ERROR_CODES = [
  'invalid_args',
  'invalid_message',
  'unknown_command',
  'not_found',
  'already_exists',
  'failed_precondition',
  'not_authenticated',
  'permission_denied',
  'timeout',
  'unavailable',
  'cancelled',
  /** A write failed for lack of space (ENOSPC), quota (EDQUOT) or a read-only file system (EROFS). */
  'no_space',
  'internal_error',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export type ErrorDetails = Record<string, unknown>;

export class KilnError extends Error {
  override readonly name: string = 'KilnError';

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: ErrorDetails = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  toJSON(): { code: ErrorCode; message: string; details: ErrorDetails } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

export function isErrorCode(value: string): value is ErrorCode {
  return (ERROR_CODES as readonly string[]).includes(value);
}

export function invalidArgs(field: string, value: unknown, reason: string): KilnError {
  return new KilnError('invalid_args', `${field}: ${reason} (got ${describe(value)})`, { field, value });
}

export function notFound(what: string, id: string): KilnError {
  return new KilnError('not_found', `${what} not found: ${JSON.stringify(id)}`, { [what]: id });
}

/** Any thrown value as a KilnError; unknown errors become internal_error keeping the cause. */
export function toKilnError(err: unknown): KilnError {
  if (err instanceof KilnError) return err;
  if (err instanceof Error) return new KilnError('internal_error', err.message, {}, { cause: err });
  return new KilnError('internal_error', String(err));
}

/** A short, safe rendering of a bad value for an error message (long or deeply nested values are cut). */
export function describe(value: unknown): string {
  const text = jsonPreview(value, 120);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}
