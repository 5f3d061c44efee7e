/** What a live listener uses to feed the stream. Safe to pass the methods around unbound. */
export interface StreamControls<T> {
  /**
   * Lossy: when the queue is full (in events, or in bytes counting `bytes.downstream()`) this item
   * (the newest) is dropped, counted, told through `dropNotice`, and false returned.
   */
  push(item: T): boolean;
  /**
   * Must-land: never refused for bytes (it counts toward them, so later output yields to it); when
   * the queue is full in events, the oldest ordinary item (else the oldest item) is evicted to make room.
   */
  pushPriority(item: T): void;
  /** Fail-closed: when full (in events or in queued bytes), release the listeners, discard the queue, and fail the consumer's next read. */
  pushOrTerminate(item: T): void;
  /** The source itself failed: release the listeners, discard the queue, and fail the consumer's next read with `error`. */
  fail(error: Error): void;
  /** Deliver everything queued so far, then finish. Always lands, and nothing pushed later is kept. */
  end(): void;
  /** Items lost to `push` on a full queue or evicted by `pushPriority`. */
  readonly dropped: number;
}

/** Bounds the live queue in bytes as well as in events: an event may be a large batch. */
export interface ByteBound<T> {
  /** Live bytes the consumer may lag behind by: queued items plus `downstream()`. */
  readonly max: number;
  /** An item's size in bytes, roughly what it costs queued and sent; called once per pushed item. */
  sizeOf(item: T): number;
  /**
   * Bytes already taken from the queue but not yet delivered (a socket's send buffer). A lossy push
   * counts them, so a consumer whose transport does not drain gets output dropped, not buffered there.
   */
  downstream?(): number;
}

/** How a lossy stream tells its consumer what `push` dropped, in the place where it was lost. */
export interface DropNotice<T> {
  /** The counter a dropped item adds to, and by how much (e.g. its job and its line count); undefined: not told. */
  tally(item: T): { key: string; count: number } | undefined;
  /**
   * The item delivered for one key of a run of drops (drops with nothing kept between them), before
   * whatever was queued after the run; one per key, in the order the keys were first dropped.
   */
  notice(key: string, count: number): T;
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
  /** Live bytes the consumer may lag behind by; without it only `capacity` bounds the queue. History does not count. */
  bytes?: ByteBound<T>;
  /** Without it, drops are only counted (`dropped`). */
  dropNotice?: DropNotice<T>;
  /** Abort finishes iteration (done) and releases the listeners. */
  signal?: AbortSignal;
}

/** History then live. Returning, disposing, aborting, end() and terminate each release the listeners once. */
export interface EventStream<T> extends AsyncIterableIterator<T>, Disposable {
  readonly dropped: number;
  /** The listeners are gone; the consumer may still be draining what was queued before end(). */
  readonly released: boolean;
}
