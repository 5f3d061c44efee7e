import { invalidArgs } from '@kiln/core';
import { DEFAULT_REQUEST_TIMEOUT_MS } from './types.js';

/** Shared argument checks, so a JS caller gets the same invalid_args from either bus. */

export const EMPTY = new Uint8Array(0);

export function checkData(data: unknown): Uint8Array {
  if (data === undefined) return EMPTY;
  if (!(data instanceof Uint8Array)) throw invalidArgs('data', typeof data, 'must be a Uint8Array');
  return data;
}

export function checkFunction(field: string, fn: unknown, optional: boolean): void {
  if (fn === undefined && optional) return;
  if (typeof fn !== 'function') throw invalidArgs(field, typeof fn, 'must be a function');
}

const QUEUE = /^[^\s]+$/;

export function checkQueue(queue: unknown): void {
  if (queue === undefined) return;
  if (typeof queue !== 'string' || !QUEUE.test(queue)) throw invalidArgs('queue', queue, 'must be a non-empty name without whitespace');
}

export function resolveTimeout(timeoutMs: unknown): number {
  if (timeoutMs === undefined) return DEFAULT_REQUEST_TIMEOUT_MS;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 1) {
    throw invalidArgs('timeoutMs', timeoutMs, 'must be a finite number of milliseconds, at least 1');
  }
  return timeoutMs;
}
