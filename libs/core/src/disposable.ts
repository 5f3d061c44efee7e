/** Run every disposer, even if one throws; rethrow the first failure afterwards. */
export function disposeAll(disposers: Iterable<Disposable>): void {
  let failure: unknown;
  for (const d of disposers) {
    try {
      d[Symbol.dispose]();
    } catch (err) {
      failure ??= err;
    }
  }
  if (failure !== undefined) throw failure;
}

export function disposable(fn: () => void): Disposable {
  let done = false;
  return {
    [Symbol.dispose]() {
      if (done) return;
      done = true;
      fn();
    },
  };
}
