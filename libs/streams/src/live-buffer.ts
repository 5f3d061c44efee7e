import { StreamBackpressureError } from './errors.js';
import { LiveQueue } from './live-queue.js';
import type { StreamControls } from './types.js';

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
  #accepting = true;
  #ended = false;
  #dropped = 0;
  #failure: Error | undefined;

  constructor(capacity: number, events: BufferEvents) {
    this.#queue = new LiveQueue(capacity);
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
    if (this.#queue.full) {
      this.#dropped++;
      return false;
    }
    this.#queue.add(item, false);
    this.#events.readable();
    return true;
  };

  readonly pushPriority = (item: T): void => {
    if (!this.#accepting) return;
    if (this.#queue.full) {
      this.#queue.evict();
      this.#dropped++;
    }
    this.#queue.add(item, true);
    this.#events.readable();
  };

  readonly pushOrTerminate = (item: T): void => {
    if (!this.#accepting) return;
    if (!this.#queue.full) {
      this.#queue.add(item, false);
      this.#events.readable();
      return;
    }
    this.fail(new StreamBackpressureError(this.#queue.capacity));
  };

  /** The source broke (a remote stream errored): release listeners, drop the backlog, fail the next read with `error`. */
  readonly fail = (error: Error): void => {
    if (!this.#accepting) return;
    this.#failure = error;
    this.#queue.clear();
    this.#stop();
  };

  // A flag, not a queued sentinel: it lands even when full without evicting anything queued before it.
  readonly end = (): void => {
    if (!this.#accepting) return;
    this.#ended = true;
    this.#stop();
  };

  /** The oldest queued item, boxed (see LiveQueue.shift). */
  take(): { item: T } | undefined {
    return this.#queue.shift();
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
    this.#queue.clear();
  }

  #stop(): void {
    this.#accepting = false;
    this.#events.stopped();
  }
}
