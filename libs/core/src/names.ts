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
