import { invalidArgs } from './errors.js';

/**
 * Identifiers that end up as file names (job ids, service names) are checked at the boundary:
 * a closed alphabet rules out traversal, separators, NUL and absolute paths in one rule.
 */
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function isSafeId(value: unknown): value is string {
  return typeof value === 'string' && SAFE_ID.test(value) && !value.includes('..');
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
