import { Fifo } from './fifo.js';

interface Entry<T> {
  readonly seq: number;
  readonly item: T;
  readonly bytes: number;
}

/** Items lost right after the entry numbered `after`, counted per key. */
interface Gap {
  readonly after: number;
  readonly tally: Map<string, number>;
}

/** The counter a lost item adds to; undefined: it is not told. */
export type Tally<T> = (item: T) => { key: string; count: number } | undefined;

/** The oldest item (boxed, so a queued `undefined` is told apart from an empty queue), or the losses due before it. */
export type Taken<T> = { readonly item: T } | { readonly dropped: ReadonlyMap<string, number> };

/**
 * Bounded queue of ordinary and priority items in one arrival order. Keeping the two kinds in
 * separate FIFOs stamped with a sequence number makes "evict the oldest ordinary item" O(1)
 * instead of a scan past the priority items in front of it. Lost items are not kept, only tallied
 * at their place in that order, so the consumer learns of them where they would have been.
 */
export class LiveQueue<T> {
  readonly #ordinary = new Fifo<Entry<T>>();
  readonly #priority = new Fifo<Entry<T>>();
  /** Sorted by `after`; at most one gap between two entries, since losses in a row share `after`. */
  #gaps: Gap[] = [];
  readonly #tally: Tally<T> | undefined;
  #seq = 0;
  #bytes = 0;

  constructor(
    readonly capacity: number,
    tally: Tally<T> | undefined,
  ) {
    this.#tally = tally;
  }

  get size(): number {
    return this.#ordinary.length + this.#priority.length;
  }

  /** The sum of the queued items' sizes as given to add(). */
  get bytes(): number {
    return this.#bytes;
  }

  get full(): boolean {
    return this.size >= this.capacity;
  }

  /** The caller checks room first; this never refuses. */
  add(item: T, priority: boolean, bytes: number): void {
    (priority ? this.#priority : this.#ordinary).push({ seq: this.#seq++, item, bytes });
    this.#bytes += bytes;
  }

  /** A pushed item that was refused: tallied after everything queued so far. */
  lose(item: T): void {
    this.#tallyGap(this.#seq - 1, item);
  }

  /** Make room for one: the oldest ordinary item, else the oldest priority item, tallied where it was. */
  evict(): void {
    const entry = this.#ordinary.length > 0 ? this.#ordinary.shift() : this.#priority.shift();
    if (!entry) return;
    this.#bytes -= entry.bytes;
    this.#tallyGap(entry.seq, entry.item);
  }

  /** The losses that come before the oldest item (all of them merged), else that item. */
  shift(): Taken<T> | undefined {
    const next = this.#peek();
    const gap = this.#gaps[0];
    if (gap && (!next || gap.after < next.seq)) return { dropped: this.#takeGapsBefore(next?.seq ?? Infinity) };
    if (!next) return undefined;
    (next === this.#ordinary.peek() ? this.#ordinary : this.#priority).shift();
    this.#bytes -= next.bytes;
    return { item: next.item };
  }

  clear(): void {
    this.#ordinary.clear();
    this.#priority.clear();
    this.#gaps = [];
    this.#bytes = 0;
  }

  #peek(): Entry<T> | undefined {
    const ordinary = this.#ordinary.peek();
    const priority = this.#priority.peek();
    return ordinary && (!priority || ordinary.seq < priority.seq) ? ordinary : priority;
  }

  #tallyGap(after: number, item: T): void {
    const lost = this.#tally?.(item);
    if (!lost) return;
    // Refusals land at the end; only an eviction (rare: the queue is full in events) lands further in.
    let at = this.#gaps.length;
    while (at > 0 && this.#gaps[at - 1]!.after > after) at--;
    const gap = this.#gaps[at - 1];
    if (gap?.after === after) gap.tally.set(lost.key, (gap.tally.get(lost.key) ?? 0) + lost.count);
    else this.#gaps.splice(at, 0, { after, tally: new Map([[lost.key, lost.count]]) });
  }

  /** Gaps with nothing queued between them make one notice per key, not one per gap. */
  #takeGapsBefore(seq: number): Map<string, number> {
    const merged = new Map<string, number>();
    while (this.#gaps.length > 0 && this.#gaps[0]!.after < seq) {
      for (const [key, count] of this.#gaps.shift()!.tally) merged.set(key, (merged.get(key) ?? 0) + count);
    }
    return merged;
  }
}
