import { OUTPUT_TAIL_LINES } from '@kiln/contracts';
import { invalidArgs } from '@kiln/core';

/**
 * Post-completion retention: what a finished job's in-memory/last-output view keeps.
 * Why 2000: enough to show the failing step of a verbose build plus its context; the full
 * output always lives in the log store, so this is a view, not the record.
 */
export const MAX_OUTPUT_LINES_RETAINED = OUTPUT_TAIL_LINES;

/**
 * In-flight cap: 2x retained. Crossing it trims back to INFLIGHT_TRIM_KEEP (hysteresis: 2000
 * appends between O(cap) trims).
 * Why 2x: a user tailing a live build sees up to twice the retained window before old lines age
 * off, while a subprocess flooding output forever (retry loops, a stuck flasher) can hold at most
 * this many lines in memory instead of growing until the process OOMs.
 */
export const MAX_OUTPUT_LINES_INFLIGHT = MAX_OUTPUT_LINES_RETAINED * 2;

/**
 * Where an in-flight trim lands. Why == retained: (1) cap - keep = 2000 appends of headroom before
 * the next trim, so trim work is amortised instead of paid per line on adversarial output; (2) the
 * final trim is then a no-op for any job that already trimmed in flight, so a finished job never
 * loses context twice.
 */
export const INFLIGHT_TRIM_KEEP = MAX_OUTPUT_LINES_RETAINED;

export interface JobOutputOptions {
  /** Lines held while running before an in-flight trim fires (default MAX_OUTPUT_LINES_INFLIGHT). */
  inflightCap?: number;
  /** Lines an in-flight trim keeps (default INFLIGHT_TRIM_KEEP). */
  keep?: number;
  /** Lines finish() keeps (default MAX_OUTPUT_LINES_RETAINED). */
  retained?: number;
}

export interface OutputLimits {
  readonly inflightCap: number;
  readonly keep: number;
  readonly retained: number;
}

/**
 * Defaults filled in and the invariant `inflightCap > keep >= retained >= 1` enforced:
 * - cap > keep: otherwise a trim frees no headroom and every append past the cap pays a trim
 *   (no hysteresis); with keep == cap the trim would not even bring the buffer under the cap.
 * - keep >= retained: the final trim must only ever shrink what an in-flight trim kept; the
 *   reverse would make finish() a silent no-op that retains more than promised.
 * - retained >= 1: a finished view always shows the last line (usually the error) under the notice.
 */
export function resolveOutputLimits(options: JobOutputOptions = {}): OutputLimits {
  const inflightCap = options.inflightCap ?? MAX_OUTPUT_LINES_INFLIGHT;
  const keep = options.keep ?? INFLIGHT_TRIM_KEEP;
  const retained = options.retained ?? MAX_OUTPUT_LINES_RETAINED;
  requireCount('inflightCap', inflightCap);
  requireCount('keep', keep);
  requireCount('retained', retained);
  if (!(inflightCap > keep)) throw invalidArgs('keep', keep, `must be less than inflightCap (${inflightCap})`);
  if (!(keep >= retained)) throw invalidArgs('retained', retained, `must not exceed keep (${keep})`);
  return { inflightCap, keep, retained };
}

/** A line count must be a positive safe integer: fractions, NaN or Infinity would make the bounds meaningless. */
function requireCount(field: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw invalidArgs(field, value, 'must be a positive integer');
  }
}
