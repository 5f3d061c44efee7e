import { KILN_VERSION } from '@kiln/contracts';
import { describe, expect, it } from 'vitest';
import { versionMatches } from '../src/executors/receiver-pool.js';

describe('version_match_policy', () => {
  const [major, minor] = KILN_VERSION.split('.');
  it('any: every receiver; release: same major.minor; exact: the same version', () => {
    expect(versionMatches('any', '9.9.9')).toBe(true);
    expect(versionMatches('release', `${major}.${minor}.99`)).toBe(true);
    expect(versionMatches('release', `${major}.${Number(minor) + 1}.0`)).toBe(false);
    expect(versionMatches('exact', KILN_VERSION)).toBe(true);
    expect(versionMatches('exact', `${major}.${minor}.99`)).toBe(false);
  });
});
