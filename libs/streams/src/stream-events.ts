import { deferred, type Deferred } from '@kiln/core';
import { resolveCapacity, resolveMaxBytes } from './capacity.js';
import { abandonHistory, openHistory, type History } from './history.js';
import { LiveBuffer } from './live-buffer.js';
import type { EventStream, StreamOptions } from './types.js';

const INTERRUPTED = Symbol('interrupted');
type Interrupted = typeof INTERRUPTED;

const done = (): IteratorReturnResult<undefined> => ({ done: true, value: undefined });

/**
 * History then live, with no gap and no overlap: listeners attach before the snapshot is taken and
 * in the same tick, so every event is either in the snapshot or queued live. Live items wait in a
 * bounded queue until the whole snapshot has been delivered.
 */
export function streamEvents<T>(options: StreamOptions<T>): EventStream<T> {
  const capacity = resolveCapacity(options.capacity);
  if (options.bytes) resolveMaxBytes(options.bytes.max);
  return new LiveEventStream(options, capacity);
}

class LiveEventStream<T> implements EventStream<T> {
  readonly #buffer: LiveBuffer<T>;
  readonly #signal: AbortSignal | undefined;
  #handle: Disposable | undefined;
  #released = false;
  #finished = false;
  #history: History<T> | undefined;
  /** A snapshot step left in flight by an interrupted read; the next read awaits it, not a new one. */
  #historyStep: Promise<IteratorResult<T, unknown>> | undefined;
  #historyWaiter: Deferred<Interrupted> | undefined;
  #liveWaiter: Deferred<void> | undefined;
  /** Reads run one at a time, so concurrent next() calls cannot reorder history and live. */
  #lastRead: Promise<unknown> = Promise.resolve();
  readonly #onAbort = (): void => this.#finish();

  constructor(options: StreamOptions<T>, capacity: number) {
    this.#buffer = new LiveBuffer(
      capacity,
      {
        readable: () => this.#wakeLive(),
        stopped: () => {
          this.#wakeAll();
          this.#release();
        },
      },
      { bytes: options.bytes, dropNotice: options.dropNotice },
    );
    this.#signal = options.signal;
    if (this.#signal?.aborted) {
      this.#finish();
      return;
    }
    try {
      const handle = options.attach(this.#buffer);
      // end() or terminate inside attach() released before the handle existed.
      if (this.#released) handle[Symbol.dispose]();
      else this.#handle = handle;
      this.#history = openHistory(options.snapshot?.());
    } catch (err) {
      this.#finish();
      throw err;
    }
    this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
    if (this.#signal?.aborted) this.#finish();
  }

  get dropped(): number {
    return this.#buffer.dropped;
  }

  get released(): boolean {
    return this.#released;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<T, undefined>> {
    const read = this.#lastRead.then(() => this.#read());
    this.#lastRead = read.catch(() => undefined);
    return read;
  }

  async return(): Promise<IteratorResult<T, undefined>> {
    this.#finish();
    return done();
  }

  [Symbol.dispose](): void {
    this.#finish();
  }

  async #read(): Promise<IteratorResult<T, undefined>> {
    for (;;) {
      const failure = this.#buffer.takeFailure();
      if (failure) {
        this.#finish();
        throw failure;
      }
      if (this.#finished) return done();
      if (this.#history) {
        const step = await this.#stepHistory(this.#history);
        // Stopped while waiting: the step is moot, the top of the loop says what happens instead.
        if (step === INTERRUPTED || this.#finished || this.#buffer.failed) continue;
        if (!step.done) return { done: false, value: step.value };
        this.#history = undefined;
        continue;
      }
      const next = this.#buffer.take();
      if (next) return { done: false, value: next.item };
      if (this.#buffer.ended) {
        this.#finish();
        return done();
      }
      await this.#waitForLive();
    }
  }

  async #stepHistory(history: History<T>): Promise<IteratorResult<T, unknown> | Interrupted> {
    const waiter = deferred<Interrupted>();
    try {
      if (history.sync) return history.it.next();
      // Raced so abort or terminate is not held hostage by a stalled snapshot.
      this.#historyStep ??= history.it.next();
      this.#historyWaiter = waiter;
      const step = await Promise.race([this.#historyStep, waiter.promise]);
      if (step !== INTERRUPTED) this.#historyStep = undefined;
      return step;
    } catch (err) {
      this.#history = undefined;
      this.#historyStep = undefined;
      this.#finish();
      throw err;
    } finally {
      if (this.#historyWaiter === waiter) this.#historyWaiter = undefined;
    }
  }

  async #waitForLive(): Promise<void> {
    const waiter = deferred();
    this.#liveWaiter = waiter;
    await waiter.promise;
  }

  #wakeLive(): void {
    const waiter = this.#liveWaiter;
    this.#liveWaiter = undefined;
    waiter?.resolve();
  }

  #wakeAll(): void {
    this.#wakeLive();
    const waiter = this.#historyWaiter;
    this.#historyWaiter = undefined;
    waiter?.resolve(INTERRUPTED);
  }

  /** Iteration is over for good: whatever ended it, the listeners go exactly once. */
  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#buffer.discard();
    if (this.#history) abandonHistory(this.#history, this.#historyStep);
    this.#history = undefined;
    this.#historyStep = undefined;
    this.#wakeAll();
    // Last, because it runs the caller's code and may throw once our state is already settled.
    this.#release();
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    const handle = this.#handle;
    this.#handle = undefined;
    handle?.[Symbol.dispose]();
  }
}
