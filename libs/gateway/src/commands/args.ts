import { v } from '@kiln/config';
import { KilnError } from '@kiln/core';

/**
 * Validate a command's args; the error names the offending field (dotted path) and its value
 * (long values are clipped once, where every error frame is built: ws/protocol.ts).
 */
export function parseArgs<S extends v.GenericSchema>(schema: S, args: unknown): v.InferOutput<S> {
  const result = v.safeParse(schema, args);
  if (result.success) return result.output;
  const issue = result.issues[0];
  const path = (issue.path ?? []).map((p) => String(p.key)).join('.') || 'args';
  const unknownKey = issue.type === 'strict_object';
  const message = unknownKey ? `${path}: unknown argument` : `${path}: ${issue.message}`;
  throw new KilnError('invalid_args', message, { field: path, value: issue.input });
}

/** Argument shapes shared by several commands. */
export const arg = {
  configuration: v.pipe(v.string('must be a string'), v.minLength(1, 'must not be empty'), v.maxLength(255, 'is too long')),
  jobId: v.pipe(v.string('must be a string'), v.minLength(1, 'must not be empty'), v.maxLength(128, 'is too long')),
  port: v.pipe(v.string('must be a string'), v.maxLength(255, 'is too long')),
  configurations: v.pipe(v.array(v.pipe(v.string('must be a string'), v.maxLength(255)), 'must be a list of configuration names'), v.minLength(1, 'must not be empty'), v.maxLength(500, 'at most 500 at once')),
};

export { v };
