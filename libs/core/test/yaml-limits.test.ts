import { describe, expect, it } from 'vitest';
import { YAML_LIMITS, yamlLimitExceeded } from '../src/index.js';

const MB = 1024 * 1024;

describe('YAML limits, checked before parsing', () => {
  it('refuses nesting past 64 levels however it is written: flow brackets, compact entries, indentation', () => {
    const refusals = [
      `x: ${'['.repeat(500_000)}${']'.repeat(500_000)}`,
      `x: ${'{a: '.repeat(200_000)}1${'}'.repeat(200_000)}`,
      `x:\n${'- '.repeat(400_000)}y`,
      Array.from({ length: 1_000 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n'),
      `x: [\n${'  [\n'.repeat(100)}]`,
      `- ${'? '.repeat(100)}k`,
    ];
    for (const text of refusals) expect(yamlLimitExceeded(text)).toMatch(/deeper than the limit of 64 levels for YAML \(at line \d+\)/);
    expect(yamlLimitExceeded(`x: ${'['.repeat(62)}${']'.repeat(62)}`)).toBeUndefined();
    expect(yamlLimitExceeded(`x: ${'['.repeat(64)}${']'.repeat(64)}`)).toContain('64 levels');
  });

  it('refuses over 1 MiB and over 50,000 nodes (a flat list of a million items costs the parser as much as deep nesting)', () => {
    expect(yamlLimitExceeded(`x: "${'a'.repeat(MB)}"`)).toContain(`over the limit of ${YAML_LIMITS.maxBytes} bytes`);
    expect(yamlLimitExceeded(`x: [${'1,'.repeat(400_000)}1]`)).toContain('more than 50000 nodes');
    expect(yamlLimitExceeded('- 1\n'.repeat(60_000))).toContain('more than 50000 nodes');
  });

  it('accepts what configs really hold: brackets in quotes, plain scalars and block scalars, comments, documents', () => {
    const lambda = Array.from({ length: 200 }, (_, i) => `      ${' '.repeat(i % 40)}if (a[${i}] > b[c[d[0]]]) { x = "]"; } // [[[[`).join('\n');
    const config = [
      '%YAML 1.2',
      '---',
      'esphome:',
      '  name: "kitchen [main]"',
      "  comment: 'it''s [not] a list {'",
      '  friendly_name: Kitchen [1] {2} # comment [[[[',
      'sensor:',
      '  - platform: template',
      '    lambda: |-',
      lambda,
      '    filters: [ { multiply: 2 }, "[", \'{\', it\'s ]',
      '    url: http://x/[a]',
      '    multi: "first line [',
      '      [ still the string ]"',
      '...',
    ].join('\n');
    expect(yamlLimitExceeded(config)).toBeUndefined();
    // 60 levels of ordinary block nesting, two spaces each.
    expect(yamlLimitExceeded(Array.from({ length: 60 }, (_, i) => `${'  '.repeat(i)}k${i}:`).join('\n'))).toBeUndefined();
  });
});
