import { describe, expect, it } from 'vitest';
import { subjectMatches, validateSubject } from '../src/index.js';

describe('subjectMatches', () => {
  it.each([
    ['a.b', 'a.b', true],
    ['a.b', 'a.bc', false],
    ['a.b', 'a', false],
    ['a', 'a.b', false],
    ['a.*', 'a.b', true],
    ['a.*', 'a', false],
    ['a.*', 'a.b.c', false],
    ['*.b', 'a.b', true],
    ['*', 'a', true],
    ['*', 'a.b', false],
    ['a.>', 'a.b', true],
    ['a.>', 'a.b.c', true],
    ['a.>', 'a', false],
    ['>', 'a', true],
    ['>', 'a.b.c', true],
    ['a.*.>', 'a.b', false],
    ['a.*.>', 'a.b.c', true],
    ['ab.c', 'a.c', false],
  ])('%s against %s → %s', (pattern, subject, expected) => {
    expect(subjectMatches(pattern, subject)).toBe(expected);
  });
});

describe('validateSubject', () => {
  it('accepts plain subjects everywhere and wildcards only when allowed', () => {
    expect(() => validateSubject('kiln.logstore.lines.job-1', { wildcards: false })).not.toThrow();
    expect(() => validateSubject('kiln.*.>', { wildcards: true })).not.toThrow();
    expect(() => validateSubject('kiln.*', { wildcards: false })).toThrow(/subject/);
  });
});
