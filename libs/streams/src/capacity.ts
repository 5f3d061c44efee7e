import { invalidArgs } from '@kiln/core';

/**
 * Upstream sizes the follower queue like the in-flight log cap (2x the 2000-line retention window):
 * a slow follower can still hold one whole in-flight window, while one further behind is showing
 * stale state anyway, so the bound caps memory per follower without cutting off a merely slow one.
 */
export const DEFAULT_STREAM_CAPACITY = 4000;

export function resolveCapacity(value: number | undefined): number {
  if (value === undefined) return DEFAULT_STREAM_CAPACITY;
  if (!Number.isSafeInteger(value) || value <= 0) throw invalidArgs('capacity', value, 'must be a positive integer');
  return value;
}
