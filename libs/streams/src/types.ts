/** What a live listener uses to feed the stream. Safe to pass the methods around unbound. */
export interface StreamControls<T> {
  /** Lossy: when the queue is full this item (the newest) is dropped, counted, and false returned. */
  push(item: T): boolean;
  /** Must-land: when full, the oldest ordinary item (else the oldest item) is evicted to make room. */
  pushPriority(item: T): void;
  /** Fail-closed: when full, release the listeners, discard the queue, and fail the consumer's next read. */
  pushOrTerminate(item: T): void;
  /** The source itself failed: release the listeners, discard the queue, and fail the consumer's next read with `error`. */
  fail(error: Error): void;
  /** Deliver everything queued so far, then finish. Always lands, and nothing pushed later is kept. */
  end(): void;
  /** Items lost to `push` on a full queue or evicted by `pushPriority`. */
  readonly dropped: number;
}

export interface StreamOptions<T> {
  /** Attach live listeners. Called synchronously inside streamEvents(), BEFORE snapshot(). Returns what releases them. */
  attach(controls: StreamControls<T>): Disposable;
  /**
   * History. Called synchronously right after attach (same tick), so nothing can fire between attach
   * and the snapshot being fixed; it may be consumed asynchronously. Fix the data when called, not
   * when first iterated: an event already captured here is delivered again by the listener.
   */
  snapshot?(): Iterable<T> | AsyncIterable<T>;
  /** Live items the consumer may lag behind by; history does not count. */
  capacity?: number;
  /** Abort finishes iteration (done) and releases the listeners. */
  signal?: AbortSignal;
}

/** History then live. Returning, disposing, aborting, end() and terminate each release the listeners once. */
export interface EventStream<T> extends AsyncIterableIterator<T>, Disposable {
  readonly dropped: number;
  /** The listeners are gone; the consumer may still be draining what was queued before end(). */
  readonly released: boolean;
}
