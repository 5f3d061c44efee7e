export type History<T> =
  | { readonly sync: true; readonly it: Iterator<T, unknown> }
  | { readonly sync: false; readonly it: AsyncIterator<T, unknown> };

const ignore = (): void => {};

// Sync snapshots are stepped without awaiting their values, so an item that is itself a promise stays one.
export function openHistory<T>(source: Iterable<T> | AsyncIterable<T> | undefined): History<T> | undefined {
  if (source === undefined) return undefined;
  if (Symbol.asyncIterator in source) return { sync: false, it: source[Symbol.asyncIterator]() };
  return { sync: true, it: source[Symbol.iterator]() };
}

/**
 * Stop a snapshot nobody will read: return() lets a generator run its finally blocks. Its failure,
 * and a step still in flight that may yet reject, have no reader left, so both are swallowed
 * rather than surfacing as unhandled rejections.
 */
export function abandonHistory<T>(history: History<T>, inFlight: Promise<unknown> | undefined): void {
  inFlight?.catch(ignore);
  try {
    if (history.sync) history.it.return?.();
    else Promise.resolve(history.it.return?.()).catch(ignore);
  } catch {
    // See above: nobody to report to.
  }
}
