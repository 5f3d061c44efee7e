import { invalidArgs } from '@kiln/core';

/**
 * Upstream sizes the follower queue like the in-flight log cap (2x the 2000-line retention window):
 * a slow follower can still hold one whole in-flight window, while one further behind is showing
 * stale state anyway, so the bound caps memory per follower without cutting off a merely slow one.
 */
export const DEFAULT_STREAM_CAPACITY = 4000;

/**
 * An event may be a batch of hundreds of lines, so the event count alone lets one paused follower
 * hold a gigabyte. 2 MiB still covers a whole 2000-line retention window of ordinary build output
 * (~100 bytes a line, ten times over) plus what the socket is sending, so a merely slow follower
 * loses nothing, while three paused ones cost a few MB rather than their backlog.
 */
export const DEFAULT_STREAM_MAX_BYTES = 2 * 1024 * 1024;

export function resolveCapacity(value: number | undefined): number {
  if (value === undefined) return DEFAULT_STREAM_CAPACITY;
  if (!Number.isSafeInteger(value) || value <= 0) throw invalidArgs('capacity', value, 'must be a positive integer');
  return value;
}

export function resolveMaxBytes(value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw invalidArgs('bytes.max', value, 'must be a positive integer');
  return value;
}
