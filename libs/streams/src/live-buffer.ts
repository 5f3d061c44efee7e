import { StreamBackpressureError } from './errors.js';
import { LiveQueue } from './live-queue.js';
import type { ByteBound, DropNotice, StreamControls } from './types.js';

export interface BufferEvents {
  /** An item was queued: wake a parked reader. */
  readable(): void;
  /** end() or overflow-terminate: nothing more is accepted, so the listeners can go now. */
  stopped(): void;
}

/**
 * The producer side of a stream. Controls are arrow properties because listeners often pass
 * `controls.push` straight to an emitter, which would otherwise lose `this`.
 */
export class LiveBuffer<T> implements StreamControls<T> {
  readonly #queue: LiveQueue<T>;
  readonly #events: BufferEvents;
  readonly #bytes: ByteBound<T> | undefined;
  readonly #dropNotice: DropNotice<T> | undefined;
  /** Notices for the last run of drops taken from the queue, delivered before anything after it. */
  readonly #notices: T[] = [];
  #accepting = true;
  #ended = false;
  #dropped = 0;
  #failure: Error | undefined;

  constructor(capacity: number, events: BufferEvents, bounds: { bytes?: ByteBound<T> | undefined; dropNotice?: DropNotice<T> | undefined } = {}) {
    this.#dropNotice = bounds.dropNotice;
    this.#queue = new LiveQueue(capacity, bounds.dropNotice && ((item) => bounds.dropNotice!.tally(item)));
    this.#bytes = bounds.bytes;
    this.#events = events;
  }

  get dropped(): number {
    return this.#dropped;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Terminated and the consumer has not been told yet. */
  get failed(): boolean {
    return this.#failure !== undefined;
  }

  readonly push = (item: T): boolean => {
    if (!this.#accepting) return false;
    const bytes = this.#sizeOf(item);
    if (!this.#hasRoomForLossy(bytes)) {
      this.#dropped++;
      this.#queue.lose(item);
      return false;
    }
    this.#queue.add(item, false, bytes);
    this.#events.readable();
    return true;
  };

  readonly pushPriority = (item: T): void => {
    if (!this.#accepting) return;
    if (this.#queue.full) {
      this.#queue.evict();
      this.#dropped++;
    }
    this.#queue.add(item, true, this.#sizeOf(item));
    this.#events.readable();
  };

  readonly pushOrTerminate = (item: T): void => {
    if (!this.#accepting) return;
    const bytes = this.#sizeOf(item);
    if (this.#queue.full) return this.fail(new StreamBackpressureError(this.#queue.capacity));
    // Only the queue's own bytes: what a transport holds may be another stream's (one socket, many streams).
    if (this.#bytes && this.#queue.size > 0 && this.#queue.bytes + bytes > this.#bytes.max) {
      return this.fail(new StreamBackpressureError(this.#queue.capacity, this.#bytes.max));
    }
    this.#queue.add(item, false, bytes);
    this.#events.readable();
  };

  /** The source broke (a remote stream errored): release listeners, drop the backlog, fail the next read with `error`. */
  readonly fail = (error: Error): void => {
    if (!this.#accepting) return;
    this.#failure = error;
    this.#clear();
    this.#stop();
  };

  // A flag, not a queued sentinel: it lands even when full without evicting anything queued before it.
  readonly end = (): void => {
    if (!this.#accepting) return;
    this.#ended = true;
    this.#stop();
  };

  /** The oldest queued item, boxed (see LiveQueue.shift); a run of drops before it comes first, as notices. */
  take(): { item: T } | undefined {
    for (;;) {
      if (this.#notices.length > 0) return { item: this.#notices.shift()! };
      const next = this.#queue.shift();
      if (!next || 'item' in next) return next;
      // A gap is only tallied when there is a dropNotice.
      for (const [key, count] of next.dropped) this.#notices.push(this.#dropNotice!.notice(key, count));
    }
  }

  /** The terminating error (overflow or fail), handed out once. */
  takeFailure(): Error | undefined {
    const failure = this.#failure;
    this.#failure = undefined;
    return failure;
  }

  /** The consumer is gone: refuse further pushes and free the backlog. */
  discard(): void {
    this.#accepting = false;
    this.#failure = undefined;
    this.#clear();
  }

  #clear(): void {
    this.#queue.clear();
    this.#notices.length = 0;
  }

  #sizeOf(item: T): number {
    return this.#bytes ? this.#bytes.sizeOf(item) : 0;
  }

  /**
   * Room in events, and in bytes counting what the transport still holds. An item bigger than the
   * whole bound still passes an empty queue and a drained transport, or it could never be delivered.
   */
  #hasRoomForLossy(bytes: number): boolean {
    if (this.#queue.full) return false;
    if (!this.#bytes) return true;
    const downstream = this.#bytes.downstream?.() ?? 0;
    if (this.#queue.size === 0 && downstream === 0) return true;
    return this.#queue.bytes + downstream + bytes <= this.#bytes.max;
  }

  #stop(): void {
    this.#accepting = false;
    this.#events.stopped();
  }
}
