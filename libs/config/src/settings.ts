import * as v from 'valibot';

/**
 * Building blocks for settings schemas. Values from flags and the environment arrive as strings, so
 * numbers accept numeric strings; every failure message says what a good value looks like.
 */
export function intSetting(defaultValue: number, bounds: { min?: number; max?: number } = {}) {
  const min = bounds.min ?? Number.MIN_SAFE_INTEGER;
  const max = bounds.max ?? Number.MAX_SAFE_INTEGER;
  return v.optional(
    v.pipe(
      v.union([v.number(), v.string()], 'must be a whole number'),
      v.transform((value) => (typeof value === 'string' && value.trim() === '' ? Number.NaN : Number(value))),
      v.integer('must be a whole number'),
      v.minValue(min, `must be at least ${min}`),
      v.maxValue(max, `must be at most ${max}`),
    ),
    defaultValue,
  );
}

const LISTEN = /^off$|^[^\s:[\]]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/;

/** host:port (port 0 lets the OS pick), or "off". */
export function listenSetting(defaultValue: string) {
  return v.optional(v.pipe(v.string('must be host:port or "off"'), v.regex(LISTEN, 'must be host:port or "off"')), defaultValue);
}

export type Schema = v.GenericSchema<unknown, unknown>;
export type Output<S extends Schema> = v.InferOutput<S>;
