import { LineRing } from './line-ring.js';
import { resolveOutputLimits, type JobOutputOptions, type OutputLimits } from './limits.js';
import { trimNotice } from './notice.js';
import { isNoEsphomeModuleLine, isNoSpaceLine, type OutputVerdicts } from './verdicts.js';

/**
 * A running job's output as held in memory. Bounded: whatever the subprocess prints, at most
 * `inflightCap` lines are held (the log store keeps every line; this is only the live/last view).
 */
export class JobOutput {
  readonly #limits: OutputLimits;
  readonly #ring: LineRing;
  #elided = 0;
  #totalAppended = 0;
  #noEsphomeModule = false;
  #noSpace = false;

  constructor(options?: JobOutputOptions) {
    this.#limits = resolveOutputLimits(options);
    this.#ring = new LineRing(this.#limits.inflightCap);
  }

  /**
   * O(1) amortised: a trim drops cap + 1 - keep lines at once and then cap - keep appends pass
   * before the next, so each line is dropped at most once. Verdicts are taken here, before any
   * trim can drop the line.
   */
  append(line: string): void {
    this.#totalAppended += 1;
    // Set-once: a later line can never clear it (the failure already happened).
    if (!this.#noEsphomeModule && isNoEsphomeModuleLine(line)) this.#noEsphomeModule = true;
    if (!this.#noSpace && isNoSpaceLine(line)) this.#noSpace = true;
    const { inflightCap, keep } = this.#limits;
    // Holding this line would put us over the cap: trim back to `keep` (this line included).
    if (this.#ring.size + 1 > inflightCap) this.#elide(this.#ring.size + 1 - keep);
    this.#ring.push(line);
  }

  /** The current view: [notice?, ...kept lines]; the notice is present iff anything was elided, count cumulative. */
  lines(): string[] {
    const kept = this.#ring.toArray();
    return this.#elided > 0 ? [trimNotice(this.#elided), ...kept] : kept;
  }

  /** Lines dropped by trims so far, in flight and final together. */
  get elided(): number {
    return this.#elided;
  }

  /** Kept lines (not counting the notice). */
  get lineCount(): number {
    return this.#ring.size;
  }

  get totalAppended(): number {
    return this.#totalAppended;
  }

  /** A snapshot; callers cannot reset a verdict through it. */
  get verdicts(): OutputVerdicts {
    return Object.freeze({ noEsphomeModule: this.#noEsphomeModule, noSpace: this.#noSpace });
  }

  /** Final trim to `retained` (a no-op when the in-flight trim already brought it there), returns lines(). */
  finish(): string[] {
    const excess = this.#ring.size - this.#limits.retained;
    if (excess > 0) this.#elide(excess);
    return this.lines();
  }

  /**
   * Drop everything (a finished job holds no output in memory; the log store has it). The view
   * resets with it — lines, lineCount and elided go to zero, so no notice dangles over nothing —
   * while totalAppended and verdicts survive: they are facts about the run that outlive its output.
   */
  release(): void {
    this.#ring.clear();
    this.#elided = 0;
  }

  #elide(n: number): void {
    this.#elided += this.#ring.dropOldest(n);
  }
}
