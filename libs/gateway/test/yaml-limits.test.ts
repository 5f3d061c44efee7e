import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { Client, startStack, type Frame, type Stack } from './harness.js';

/** The process's peak resident memory so far, in MB (a high-water mark: no sample can miss the peak of a synchronous parse). */
const peakRssMb = (): number => process.resourceUsage().maxRSS / 1024;

/** A config whose `x:` is `depth` flow lists deep, filling a frame of about 1 MB. */
function deepFlowConfig(depth: number): string {
  return `esphome:\n  name: kitchen\nx: ${'['.repeat(depth)}${']'.repeat(depth)}\n`;
}

/** A legitimate config nested 20 levels: block maps and lists, a flow map, quotes and a lambda with brackets. */
function twentyLevels(): string {
  let yaml = 'esphome:\n  name: kitchen\nsensor:\n';
  let indent = '  ';
  for (let level = 0; level < 9; level++) {
    yaml += `${indent}- platform: template\n${indent}  id: "s[${level}]"\n${indent}  lambda: |-\n${indent}    return id(v)[${level}] > 0 ? x[0] : y[1];\n${indent}  nested:\n`;
    indent += '    ';
  }
  return `${yaml}${indent}- { a: [1, [2, "]"]], b: 'it''s' }\n`;
}

function depthOf(value: unknown): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    deepest = Math.max(deepest, d + 1);
    for (const child of Object.values(v)) stack.push([child, d + 1]);
  }
  return deepest;
}

describe('YAML from users is bounded before it is parsed', () => {
  let stack: Stack;
  let client: Client;
  beforeAll(async () => {
    stack = await startStack();
    client = await Client.connect(stack.wsUrl);
  });
  afterAll(async () => {
    client.close();
    await stack.close();
  });

  it('update_config refuses 1 MB of nested [ … ] naming the limit, and memory stays flat, one at a time and eight at once', async () => {
    const before = await readFile(join(stack.configDir, 'kitchen.yaml'), 'utf8');
    const content = deepFlowConfig(520_000);
    expect(content.length).toBeGreaterThan(1_000_000);
    const peakBefore = peakRssMb();
    const one = await client.call('devices/update_config', { configuration: 'kitchen.yaml', content });
    expect(one.error_code).toBe('invalid_args');
    expect(String((one.details as { message: string }).message)).toContain('deeper than the limit of 64 levels');
    const ids = Array.from({ length: 8 }, () => client.send('devices/update_config', { configuration: 'kitchen.yaml', content }));
    const parallel: Frame[] = await Promise.all(ids.map((id) => client.next((f) => f.message_id === id && 'error_code' in f)));
    expect(parallel.map((f) => f.error_code)).toEqual(Array(8).fill('invalid_args'));
    // The old code parsed it: about 600 MB at the peak for one frame.
    expect(peakRssMb() - peakBefore).toBeLessThan(100);
    expect(await readFile(join(stack.configDir, 'kitchen.yaml'), 'utf8')).toBe(before);
    expect((await client.call('config/version')).result).toMatchObject({ kiln_version: expect.any(String) });
  }, 300_000);

  it('a config nested 20 levels with brackets in quotes, lambdas and flow maps still saves', async () => {
    const content = twentyLevels();
    expect(depthOf(parseDocument(content).toJS())).toBeGreaterThanOrEqual(20);
    const saved = await client.call('devices/update_config', { configuration: 'kitchen.yaml', content });
    expect(saved.result).toMatchObject({ configuration: 'kitchen.yaml', name: 'kitchen' });
    expect(await readFile(join(stack.configDir, 'kitchen.yaml'), 'utf8')).toBe(content);
  });

  it('a deeply nested file put in the config dir by hand is listed as unparsable without being parsed', async () => {
    const peakBefore = peakRssMb();
    await writeFile(join(stack.configDir, 'deep.yaml'), `esphome:\n  name: other\nx: ${'{a: '.repeat(250_000)}1${'}'.repeat(250_000)}\n`);
    const listed = async () => ((await client.call('devices/list')).result as { configured: { configuration: string; name: string }[] }).configured;
    for (let i = 0; i < 200 && !(await listed()).some((d) => d.configuration === 'deep.yaml'); i++) await new Promise((r) => setTimeout(r, 25));
    // Unparsable YAML lists under its file name (so it can be opened and fixed), not under esphome.name.
    expect((await listed()).find((d) => d.configuration === 'deep.yaml')).toMatchObject({ name: 'deep' });
    expect(peakRssMb() - peakBefore).toBeLessThan(100);
  }, 300_000);
});
