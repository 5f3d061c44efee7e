/** Compacting earlier would copy on every few shifts; later would hold dead slots for long. */
const COMPACT_AFTER = 1024;

/**
 * Array FIFO with a moving head: Array#shift is O(n), this is amortised O(1). The dead prefix is
 * dropped once it outweighs the live part, so memory follows the live length, not the total pushed.
 */
export class Fifo<E extends object> {
  #items: (E | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(entry: E): void {
    this.#items.push(entry);
  }

  peek(): E | undefined {
    return this.#items[this.#head];
  }

  shift(): E | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const entry = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head === this.#items.length) {
      this.clear();
    } else if (this.#head >= COMPACT_AFTER && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return entry;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}
