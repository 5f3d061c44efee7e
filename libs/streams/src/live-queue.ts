import { Fifo } from './fifo.js';

interface Entry<T> {
  readonly seq: number;
  readonly item: T;
}

/**
 * Bounded queue of ordinary and priority items in one arrival order. Keeping the two kinds in
 * separate FIFOs stamped with a sequence number makes "evict the oldest ordinary item" O(1)
 * instead of a scan past the priority items in front of it.
 */
export class LiveQueue<T> {
  readonly #ordinary = new Fifo<Entry<T>>();
  readonly #priority = new Fifo<Entry<T>>();
  #seq = 0;

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.#ordinary.length + this.#priority.length;
  }

  get full(): boolean {
    return this.size >= this.capacity;
  }

  /** The caller checks `full` first; this never refuses. */
  add(item: T, priority: boolean): void {
    (priority ? this.#priority : this.#ordinary).push({ seq: this.#seq++, item });
  }

  /** Make room for one: the oldest ordinary item, else the oldest priority item. */
  evict(): void {
    if (this.#ordinary.length > 0) this.#ordinary.shift();
    else this.#priority.shift();
  }

  /** The oldest item, boxed so a queued `undefined` is told apart from an empty queue. */
  shift(): { item: T } | undefined {
    const ordinary = this.#ordinary.peek();
    const priority = this.#priority.peek();
    if (ordinary && (!priority || ordinary.seq < priority.seq)) return this.#ordinary.shift();
    return this.#priority.shift();
  }

  clear(): void {
    this.#ordinary.clear();
    this.#priority.clear();
  }
}
