import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { assertSafeId, describe as describeValue, invalidArgs, isArtifactName, isSafeId, jsonPreview, KilnError, nestingBeyond, toKilnError, withTimeout, writeFileAtomic } from '../src/index.js';

let dir: string;
beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'kiln-core-'))));
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('writeFileAtomic', () => {
  it('replaces a file whole, creates parents and leaves no temp file behind', async () => {
    const path = join(dir, 'a/b/state.json');
    await writeFileAtomic(path, 'first');
    await writeFileAtomic(path, 'second', 0o600);
    expect(await readFile(path, 'utf8')).toBe('second');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readdir(join(dir, 'a/b'))).toEqual(['state.json']);
  });

  it('leaves the old content when the write fails', async () => {
    const path = join(dir, 'keep.json');
    await writeFileAtomic(path, 'old');
    await expect(writeFileAtomic(join(path, 'not-a-dir'), 'x')).rejects.toThrow();
    expect(await readFile(path, 'utf8')).toBe('old');
  });
});

describe('artifact names', () => {
  it.each(['firmware.bin', 'platformio.ini', 'extra-0123456789ab-boot_app0.bin', 'a..b', 'X'.repeat(128)])('accepts %j', (name) => expect(isArtifactName(name)).toBe(true));
  it.each(['', '.', '..', '../x', 'a/b', 'a\\b', '/abs', 'a\0b', '.hidden', 'X'.repeat(129), 'sp ace', 7, null])('refuses %j', (name) => expect(isArtifactName(name)).toBe(false));
});

describe('safe ids', () => {
  it.each(['job-1', 'a.b_c', 'X'.repeat(128), '0abc'])('accepts %j', (id) => expect(isSafeId(id)).toBe(true));
  it.each(['', '.', '..', '../x', 'a/b', 'a\\b', '/abs', 'a\0b', '.hidden', 'a..b', 'X'.repeat(129), 'sp ace', 7, null])('refuses %j', (id) => {
    expect(isSafeId(id)).toBe(false);
    expect(() => assertSafeId('job_id', id)).toThrow(KilnError);
  });
  it('names the field and value in the error', () => {
    const err = (() => {
      try {
        assertSafeId('job_id', '../etc');
      } catch (e) {
        return e as KilnError;
      }
    })();
    expect(err).toMatchObject({ code: 'invalid_args', details: { field: 'job_id', value: '../etc' } });
    expect(err!.message).toMatch(/^job_id: .*\(got "\.\.\/etc"\)$/);
  });
});

describe('errors and timeouts', () => {
  it('wraps foreign errors as internal_error keeping the cause', () => {
    const cause = new Error('disk on fire');
    const err = toKilnError(cause);
    expect(err).toMatchObject({ code: 'internal_error', message: 'disk on fire' });
    expect(err.cause).toBe(cause);
    expect(toKilnError(err)).toBe(err);
  });

  it('cuts long values in messages', () => {
    expect(describeValue('x'.repeat(500)).length).toBe(120);
  });

  it('describes a value 100,000 arrays or objects deep, or a cycle, without overflowing the stack', () => {
    const deepArrays = JSON.parse('['.repeat(100_000) + ']'.repeat(100_000)) as unknown;
    const deepObjects = JSON.parse('{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000)) as unknown;
    expect(describeValue(deepArrays)).toBe(`${'['.repeat(117)}...`);
    expect(describeValue(deepObjects)).toBe(`${'{"a":'.repeat(23)}{"...`);
    expect(invalidArgs('content', deepArrays, 'must be a string').message).toContain('(got [[[[');
    const cycle: Record<string, unknown> = { name: 'x' };
    cycle['self'] = cycle;
    expect(describeValue(cycle)).toMatch(/^\{"name":"x","self":\{"name":"x","self":/);
    expect(jsonPreview({ a: [1, 'two', null, undefined, true], b: undefined, d: new Date(0), n: 10n }, 200)).toBe('{"a":[1,"two",null,null,true],"d":"1970-01-01T00:00:00.000Z","n":10}');
  });

  it('finds where a value nests deeper than a limit', () => {
    const value = JSON.parse('{"args":{"ok":[1,[2]],"password":' + '['.repeat(40) + ']'.repeat(40) + '}}') as unknown;
    expect(nestingBeyond(value, 32)).toEqual(['args', 'password', ...Array.from({ length: 30 }, () => '0')]);
    expect(nestingBeyond(value, 42)).toBeUndefined();
    expect(nestingBeyond('text', 0)).toBeUndefined();
  });

  it('withTimeout rejects with the given error when the promise is late', async () => {
    await expect(withTimeout(new Promise(() => undefined), 10, () => new KilnError('timeout', 'late'))).rejects.toThrow('late');
    await expect(withTimeout(Promise.resolve(5), 1000, () => new Error('no'))).resolves.toBe(5);
  });
});

import { assertConfigurationName } from '../src/index.js';

describe('configuration names', () => {
  it.each(['kitchen.yaml', 'a-b_c.yml', 'Living Room.yaml'])('accepts %j', (name) => expect(assertConfigurationName('configuration', name)).toBe(name));
  it.each(['../x.yaml', 'a/b.yaml', '/etc/x.yaml', 'a\\b.yaml', 'x\0.yaml', '.hidden.yaml', 'x.txt', 'x', '', 'x..yaml', 'tab\t.yaml', 7])('refuses %j with invalid_args naming it', (name) => {
    expect(() => assertConfigurationName('configuration', name)).toThrow(expect.objectContaining({ code: 'invalid_args', details: { field: 'configuration', value: name } }));
  });
});
