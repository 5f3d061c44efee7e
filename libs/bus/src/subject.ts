import { invalidArgs } from '@kiln/core';

const WHITESPACE = /\s/;
const SPACE = 32;
const ASCII_END = 127;
const DOT = 46;
const STAR = 42;
const GT = 62;

/**
 * NATS subject rules, enforced identically by both buses so code that works in-process also works on
 * NATS: dot-separated non-empty tokens, no whitespace; `*` and `>` only as whole tokens, `>` only
 * last, and wildcards only where subscribing. One pass without splitting: this runs on every publish.
 */
export function validateSubject(subject: string, opts: { wildcards: boolean }): void {
  const fail = (reason: string): never => {
    throw invalidArgs('subject', subject, reason);
  };
  if (typeof subject !== 'string' || subject.length === 0) fail('must be a non-empty string');
  const length = subject.length;
  let tokenStart = 0;
  let tokenHasWildcard = false;
  for (let i = 0; i <= length; i++) {
    const c = i === length ? DOT : subject.charCodeAt(i);
    // ASCII whitespace and control characters by code; the regex only for the rare non-ASCII character.
    if (c <= SPACE || (c > ASCII_END && WHITESPACE.test(subject[i]!))) fail('must not contain whitespace or control characters');
    if (c === STAR || c === GT) {
      tokenHasWildcard = true;
      continue;
    }
    if (c !== DOT) continue;
    const tokenLength = i - tokenStart;
    if (tokenLength === 0) fail('must be dot-separated non-empty tokens');
    if (tokenHasWildcard) {
      if (tokenLength > 1) fail('"*" and ">" must be whole tokens');
      if (!opts.wildcards) fail('wildcards are only allowed when subscribing');
      if (subject.charCodeAt(tokenStart) === GT && i !== length) fail('">" must be the last token');
    }
    tokenStart = i + 1;
    tokenHasWildcard = false;
  }
}

/**
 * Whether a (valid) subscription pattern matches a (valid) concrete subject. One pass over both
 * strings without allocating: it runs for wildcard subscriptions whenever a subject is first routed.
 */
export function subjectMatches(pattern: string, subject: string): boolean {
  const patternLength = pattern.length;
  const subjectLength = subject.length;
  let p = 0;
  let s = 0;
  while (p < patternLength) {
    const c = pattern.charCodeAt(p);
    const wholeToken = (p === 0 || pattern.charCodeAt(p - 1) === DOT) && (p + 1 === patternLength || pattern.charCodeAt(p + 1) === DOT);
    if (wholeToken && c === GT) return s < subjectLength; // the rest, at least one token
    if (wholeToken && c === STAR) {
      if (s >= subjectLength) return false;
      while (s < subjectLength && subject.charCodeAt(s) !== DOT) s++;
      p++;
      continue;
    }
    if (s >= subjectLength || subject.charCodeAt(s) !== c) return false;
    p++;
    s++;
  }
  return s === subjectLength;
}

export function hasWildcard(subject: string): boolean {
  return subject.includes('*') || subject.includes('>');
}
