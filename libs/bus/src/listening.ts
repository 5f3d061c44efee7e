import { disposable, disposeAll } from '@kiln/core';
import type { Bus, BusSubscription, MessageHandler } from './types.js';

/**
 * Subscribe one handler to several subjects as a unit: if any subscribe fails half-way, what was
 * already attached is released before rethrowing, so a caller never leaks subscriptions it cannot see.
 */
export function listening(bus: Bus, subjects: readonly string[], handler: MessageHandler): Disposable {
  const subs: BusSubscription[] = [];
  try {
    for (const subject of subjects) subs.push(bus.subscribe(subject, handler));
  } catch (err) {
    try {
      disposeAll(subs);
    } catch {
      // The subscribe failure is the one the caller needs to see.
    }
    throw err;
  }
  return disposable(() => disposeAll(subs));
}
