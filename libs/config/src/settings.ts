import { KilnError } from '@kiln/core';
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

/** A listen setting's host and port (IPv6 hosts in brackets); `field` names the setting in the error. */
export function parseListen(listen: string, field = 'listen'): { host: string; port: number } {
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(listen);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) throw new KilnError('invalid_args', `${field} must be host:port, got ${JSON.stringify(listen)}`, { field, value: listen });
  return { host: match[1]!, port };
}

export type Schema = v.GenericSchema<unknown, unknown>;
export type Output<S extends Schema> = v.InferOutput<S>;
