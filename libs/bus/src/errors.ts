import { KilnError } from '@kiln/core';

/** The errors both buses raise, built in one place so their codes, messages and details match. */

export function busClosed(): KilnError {
  return new KilnError('unavailable', 'bus is closed');
}

export function requestTimedOut(subject: string, timeoutMs: number): KilnError {
  return new KilnError('timeout', `request to ${subject} timed out after ${timeoutMs}ms`, { subject, timeoutMs });
}

export function noResponders(subject: string): KilnError {
  return new KilnError('unavailable', `no responders for ${subject}`, { subject });
}

/** A request cut short by the bus going away (close, lost connection). */
export function requestAborted(subject: string, cause?: unknown): KilnError {
  return new KilnError('unavailable', `request to ${subject} aborted: bus closed`, { subject }, { cause });
}
