import { KilnError } from '@kiln/core';
import { describe, expect, it } from 'vitest';
import { decodeError, encodeError } from '../src/error-wire.js';

describe('error wire format', () => {
  it('round-trips code, message and details', () => {
    const err = decodeError(encodeError(new KilnError('already_exists', 'exists', { id: 'a' })), 's');
    expect(err.toJSON()).toEqual({ code: 'already_exists', message: 'exists', details: { id: 'a' } });
  });

  it('keeps code and message when details cannot be serialised', () => {
    const err = decodeError(encodeError(new KilnError('cancelled', 'stop', { big: 1n })), 's');
    expect(err.toJSON()).toEqual({ code: 'cancelled', message: 'stop', details: { detailsDropped: true } });
  });

  it.each(['{"code":"nope","message":"m"}', '[]', 'null', 'not json', '{"code":1}'])('decodes %j to internal_error', (text) => {
    expect(decodeError(text, 'x.y').code).toBe('internal_error');
  });
});
