import { describe, expect, it } from 'vitest';
import { KilnError } from '@kiln/core';
import {
  INFLIGHT_TRIM_KEEP,
  isNoEsphomeModuleLine,
  JobOutput,
  MAX_OUTPUT_LINES_INFLIGHT,
  MAX_OUTPUT_LINES_RETAINED,
  NO_ESPHOME_MODULE_HINT,
  trimNotice,
  type JobOutputOptions,
} from '../src/output/index.js';

const MODULE_ERROR = "ModuleNotFoundError: No module named 'esphome'";

/** Appends `count` lines named `${prefix}${i}` for i in [from, from + count). */
function feed(out: JobOutput, count: number, from = 0, prefix = 'l'): void {
  for (let i = from; i < from + count; i += 1) out.append(`${prefix}${i}`);
}

function names(from: number, to: number, prefix = 'l'): string[] {
  const out: string[] = [];
  for (let i = from; i < to; i += 1) out.push(`${prefix}${i}`);
  return out;
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('JobOutput in-flight cap', () => {
  it('below cap no-op: up to the cap every line is kept, no notice', () => {
    const out = new JobOutput();
    feed(out, MAX_OUTPUT_LINES_INFLIGHT);
    expect(out.elided).toBe(0);
    expect(out.lineCount).toBe(4000);
    expect(out.lines()).toEqual(names(0, 4000));
  });

  it('crossing the cap trims to keep with notice', () => {
    const out = new JobOutput();
    feed(out, MAX_OUTPUT_LINES_INFLIGHT + 1);
    expect(out.elided).toBe(2001);
    expect(out.lineCount).toBe(INFLIGHT_TRIM_KEEP);
    expect(out.lines()).toEqual(['... [output trimmed: 2001 earlier line(s) elided]', ...names(2001, 4001)]);
    expect(trimNotice(2001)).toBe('... [output trimmed: 2001 earlier line(s) elided]');
  });

  it('hysteresis: after a trim, exactly cap - keep more appends before the next trim', () => {
    const out = new JobOutput();
    const trimmedAt: number[] = [];
    for (let i = 1; i <= 12_005; i += 1) {
      const before = out.elided;
      out.append(`l${i}`);
      if (out.elided !== before) trimmedAt.push(i);
    }
    // First trim on the line that crosses 4000 (back to keep = 2000), then cap - keep = 2000 appends
    // fit without trimming and the one after them trims again: a period of 2001, 2001 lines each.
    expect(trimmedAt).toEqual([4001, 6002, 8003, 10_004, 12_005]);
    expect(out.elided).toBe(5 * 2001);
    expect(out.lineCount).toBe(2000);

    // Same shape with non-default bounds: cap 10, keep 4 → 6 free appends after each trim.
    const small = new JobOutput({ inflightCap: 10, keep: 4, retained: 2 });
    const smallTrims: number[] = [];
    for (let i = 1; i <= 30; i += 1) {
      const before = small.elided;
      small.append(`s${i}`);
      if (small.elided !== before) smallTrims.push(i);
    }
    expect(smallTrims).toEqual([11, 18, 25]);
    expect(small.elided).toBe(3 * 7);
  });

  it('elided count chains across several in-flight trims and the final trim', () => {
    const out = new JobOutput({ inflightCap: 10, keep: 6, retained: 3 });
    feed(out, 25);
    // In-flight trims at appends 11, 16, 21: 5 lines each.
    expect(out.elided).toBe(15);
    expect(out.lineCount).toBe(10);
    expect(out.lines()[0]).toBe(trimNotice(15));
    const final = out.finish();
    expect(out.elided).toBe(22);
    expect(final).toEqual([trimNotice(22), 'l22', 'l23', 'l24']);
    expect(out.elided + out.lineCount).toBe(out.totalAppended);
  });
});

describe('JobOutput final trim', () => {
  it('final trim is a no-op after an in-flight trim (keep == retained)', () => {
    const out = new JobOutput();
    feed(out, 4001);
    const before = out.lines();
    expect(out.elided).toBe(2001);
    expect(out.finish()).toEqual(before);
    expect(out.elided).toBe(2001);
    expect(out.lineCount).toBe(MAX_OUTPUT_LINES_RETAINED);
  });

  it('final trim on a short-but-over-retained job (3000 lines, never crossed 4000) elides 1000', () => {
    const out = new JobOutput();
    feed(out, 3000);
    expect(out.elided).toBe(0);
    expect(out.finish()).toEqual([trimNotice(1000), ...names(1000, 3000)]);
    expect(out.elided).toBe(1000);
    expect(out.lineCount).toBe(2000);
  });

  it('idempotent finish: a second finish returns the same view and elides nothing more', () => {
    const out = new JobOutput();
    feed(out, 5000);
    const first = out.finish();
    const elided = out.elided;
    expect(elided).toBe(3000);
    expect(out.finish()).toEqual(first);
    expect(out.elided).toBe(elided);
    expect(out.lineCount).toBe(2000);
  });

  it('release empties the view but keeps totalAppended and verdicts', () => {
    const out = new JobOutput();
    out.append(MODULE_ERROR);
    feed(out, 4500);
    out.finish();
    out.release();
    expect(out.lines()).toEqual([]);
    expect(out.lineCount).toBe(0);
    expect(out.elided).toBe(0);
    expect(out.totalAppended).toBe(4501);
    expect(out.verdicts.noEsphomeModule).toBe(true);
  });
});

describe('output bounds', () => {
  it('invariant cap > keep >= retained (defaults 4000 / 2000 / 2000)', () => {
    expect(MAX_OUTPUT_LINES_INFLIGHT).toBe(4000);
    expect(INFLIGHT_TRIM_KEEP).toBe(2000);
    expect(MAX_OUTPUT_LINES_RETAINED).toBe(2000);
    expect(MAX_OUTPUT_LINES_INFLIGHT).toBeGreaterThan(INFLIGHT_TRIM_KEEP);
    expect(INFLIGHT_TRIM_KEEP).toBeGreaterThanOrEqual(MAX_OUTPUT_LINES_RETAINED);
    // The tightest legal shape is accepted; one step past it on either side is not.
    expect(() => new JobOutput({ inflightCap: 2, keep: 1, retained: 1 })).not.toThrow();
    expect(() => new JobOutput({ inflightCap: 2, keep: 2, retained: 1 })).toThrow(KilnError);
    expect(() => new JobOutput({ inflightCap: 3, keep: 1, retained: 2 })).toThrow(KilnError);
  });

  it('bad constructor options → invalid_args naming the field', () => {
    const cases: Array<[JobOutputOptions, string, unknown]> = [
      [{ inflightCap: 0 }, 'inflightCap', 0],
      [{ inflightCap: Number.NaN }, 'inflightCap', Number.NaN],
      [{ inflightCap: Number.POSITIVE_INFINITY }, 'inflightCap', Number.POSITIVE_INFINITY],
      [{ keep: 1.5 }, 'keep', 1.5],
      [{ keep: -1 }, 'keep', -1],
      [{ retained: 0 }, 'retained', 0],
      [{ inflightCap: 10, keep: 10, retained: 5 }, 'keep', 10],
      [{ keep: 5000 }, 'keep', 5000],
      [{ keep: 100, retained: 101 }, 'retained', 101],
    ];
    for (const [options, field, value] of cases) {
      const err = thrown(() => new JobOutput(options));
      expect(err, JSON.stringify(options)).toBeInstanceOf(KilnError);
      const kiln = err as KilnError;
      expect(kiln.code).toBe('invalid_args');
      expect(kiln.details).toEqual({ field, value });
      expect(kiln.message).toContain(field);
    }
  });

  it('a 2M-line append loop stays within cap lines', () => {
    const out = new JobOutput();
    let maxHeld = 0;
    for (let i = 0; i < 2_000_000; i += 1) {
      out.append(`flood line ${i}`);
      if (out.lineCount > maxHeld) maxHeld = out.lineCount;
    }
    expect(maxHeld).toBe(MAX_OUTPUT_LINES_INFLIGHT);
    expect(out.totalAppended).toBe(2_000_000);
    expect(out.elided + out.lineCount).toBe(2_000_000);
    const final = out.finish();
    expect(final).toHaveLength(MAX_OUTPUT_LINES_RETAINED + 1);
    expect(final[0]).toBe(trimNotice(2_000_000 - MAX_OUTPUT_LINES_RETAINED));
    expect(final.at(-1)).toBe('flood line 1999999');
  });
});

describe('output verdicts', () => {
  it('the verdict survives the line being trimmed away (line, then 2x cap of noise)', () => {
    const out = new JobOutput();
    expect(out.verdicts.noEsphomeModule).toBe(false);
    out.append(MODULE_ERROR);
    feed(out, 2 * MAX_OUTPUT_LINES_INFLIGHT, 0, 'noise ');
    expect(out.lines().some((line) => line.includes('esphome'))).toBe(false);
    expect(out.verdicts.noEsphomeModule).toBe(true);
    out.finish();
    expect(out.verdicts.noEsphomeModule).toBe(true);
    // Set-once: a snapshot cannot be used to clear it.
    expect(Object.isFrozen(out.verdicts)).toBe(true);
  });

  it("exact-quote matching: sibling module names do not match; CPython's quoted form does", () => {
    expect(isNoEsphomeModuleLine(MODULE_ERROR)).toBe(true);
    expect(isNoEsphomeModuleLine("  File \"x.py\", line 1 ... ModuleNotFoundError: No module named 'esphome'\r")).toBe(true);
    expect(isNoEsphomeModuleLine("ModuleNotFoundError: No module named 'esphome_dashboard'")).toBe(false);
    expect(isNoEsphomeModuleLine("ModuleNotFoundError: No module named 'esphome_glyphsets'")).toBe(false);
    expect(isNoEsphomeModuleLine("ModuleNotFoundError: No module named 'esphomeyaml'")).toBe(false);
    expect(isNoEsphomeModuleLine("ModuleNotFoundError: No module named 'esphome.components.foo'")).toBe(false);
    expect(isNoEsphomeModuleLine('INFO Reading configuration esphome.yaml...')).toBe(false);
    // `python3 -m esphome` without esphome installed: runpy's unquoted form, at the end of the line.
    expect(isNoEsphomeModuleLine('/usr/bin/python3: No module named esphome')).toBe(true);
    expect(isNoEsphomeModuleLine('/usr/bin/python3: No module named esphome_dashboard')).toBe(false);

    const sibling = new JobOutput();
    sibling.append("ModuleNotFoundError: No module named 'esphome_dashboard'");
    expect(sibling.verdicts.noEsphomeModule).toBe(false);

    expect(NO_ESPHOME_MODULE_HINT).toContain('pip install esphome');
    expect(NO_ESPHOME_MODULE_HINT).toContain('firmware.toolchain');
  });
});
