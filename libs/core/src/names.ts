import { invalidArgs } from './errors.js';

/**
 * Names that end up as file names are checked at the boundary: a closed alphabet rules out
 * traversal, separators, NUL and absolute paths in one rule.
 */
const BARE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * A file of a remote build's artifact set: a bare file name, so it can only ever land inside the
 * directory it is written to. The ONE check for the gRPC client receiving artifacts and for the
 * receiver and the flash-layout parser naming them.
 */
export function isArtifactName(value: unknown): value is string {
  return isBareName(value);
}

function isBareName(value: unknown): value is string {
  return typeof value === 'string' && BARE_NAME.test(value);
}

/** Identifiers that become file or directory names (job ids, service names, device names). */
export function isSafeId(value: unknown): value is string {
  return isBareName(value) && !value.includes('..');
}

export function assertSafeId(field: string, value: unknown): string {
  if (!isSafeId(value)) {
    throw invalidArgs(field, value, 'must be 1-128 characters of letters, digits, ".", "_" or "-", not starting with a dot and without ".."');
  }
  return value;
}

const CONFIGURATION = /^[^/\\\0]+\.ya?ml$/;

/**
 * A device configuration is a YAML file directly inside the config dir, named by its file name.
 * Refused at the boundary: separators, NUL, traversal, hidden files, absolute paths, other suffixes.
 */
export function assertConfigurationName(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 255) {
    throw invalidArgs(field, value, 'must be a YAML file name like "living-room.yaml"');
  }
  if (!CONFIGURATION.test(value) || value.startsWith('.') || value.includes('..') || /[\x00-\x1f]/.test(value)) {
    throw invalidArgs(field, value, 'must be a YAML file name in the config dir (no path separators, "..", NUL or leading dot; ending in .yaml or .yml)');
  }
  return value;
}

/** Names people read (an offloader's or receiver's name): a line in a list, not a file name. */
export const DISPLAY_NAME_MAX = 64;

/**
 * Control characters (C0, DEL, C1), line/paragraph separators and bidi overrides: each can forge or
 * hide text where the name is shown (a terminal, a log line, the approval list).
 */
const HIDDEN_OR_CONTROL = /[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

export function isDisplayName(value: unknown, maxLength = DISPLAY_NAME_MAX): value is string {
  return typeof value === 'string' && value.trim() !== '' && [...value].length <= maxLength && !HIDDEN_OR_CONTROL.test(value);
}

/** A name shown to people; refused (invalid_args naming the value) when empty, too long or carrying control characters. */
export function assertDisplayName(field: string, value: unknown, maxLength = DISPLAY_NAME_MAX): string {
  if (!isDisplayName(value, maxLength)) {
    throw invalidArgs(field, value, `must be 1-${maxLength} characters without control characters (newlines, escapes, NUL, bidi overrides)`);
  }
  return value;
}
