/**
 * A FIFO of lines with a fixed capacity, backed by a circular array: push and drop-oldest are
 * O(1) per line (no Array#shift / splice, which are O(n)), and the backing array never exceeds
 * `capacity` slots. It grows lazily, so a short job does not pay for a full-size array.
 */
export class LineRing {
  #slots: string[] = [];
  #start = 0;
  #size = 0;

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.#size;
  }

  /** The caller makes room first (dropOldest); overwriting silently would lose lines uncounted. */
  push(line: string): void {
    if (this.#size >= this.capacity) throw new RangeError(`LineRing full (${this.capacity})`);
    // Before the first wrap start + size == slots.length, so this appends densely at the end.
    this.#slots[(this.#start + this.#size) % this.capacity] = line;
    this.#size += 1;
  }

  /** Drops up to n oldest lines, blanking their slots so the strings can be collected now; returns how many. */
  dropOldest(n: number): number {
    const count = Math.min(n, this.#size);
    for (let k = 0; k < count; k += 1) {
      this.#slots[this.#start] = '';
      this.#start = (this.#start + 1) % this.capacity;
    }
    this.#size -= count;
    return count;
  }

  toArray(): string[] {
    const out: string[] = [];
    for (let k = 0; k < this.#size; k += 1) {
      const line = this.#slots[(this.#start + k) % this.capacity];
      if (line !== undefined) out.push(line);
    }
    return out;
  }

  clear(): void {
    this.#slots = [];
    this.#start = 0;
    this.#size = 0;
  }
}
