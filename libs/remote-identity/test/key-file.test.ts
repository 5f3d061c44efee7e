import { chmod, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadOrCreateIdentity, rotateIdentity, type KeyFileWarner } from '../src/index.js';
import { readIdentity } from '../src/store/index.js';

let scratch: string;
beforeEach(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'kiln-key-file-'));
});
afterEach(async () => {
  await rm(scratch, { recursive: true, force: true });
});

function collector(): KeyFileWarner & { lines: Array<{ details: Record<string, unknown>; message: string }> } {
  const lines: Array<{ details: Record<string, unknown>; message: string }> = [];
  return { lines, warn: (details, message) => void lines.push({ details, message }) };
}

describe("an offloader's private key file", () => {
  it('is created 0600 in a 0700 directory, and stays so after a rotation', async () => {
    const dir = join(scratch, 'offloader', 'identity');
    await loadOrCreateIdentity(dir, 'office');
    expect((await stat(join(dir, 'identity.json'))).mode & 0o777).toBe(0o600);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    await rotateIdentity(dir);
    expect((await stat(join(dir, 'identity.json'))).mode & 0o777).toBe(0o600);
  });

  it('readable by group or others is still used, with a warning naming the file and its mode', async () => {
    const dir = join(scratch, 'offloader', 'identity');
    const created = await loadOrCreateIdentity(dir, 'office');
    const quiet = collector();
    await readIdentity(dir, { logger: quiet });
    expect(quiet.lines).toEqual([]);

    const file = join(dir, 'identity.json');
    await chmod(file, 0o644);
    const warned = collector();
    expect((await loadOrCreateIdentity(dir, 'office', { logger: warned }))?.fingerprint).toBe(created.fingerprint);
    expect(warned.lines).toEqual([{ details: { file, mode: '0644' }, message: expect.stringContaining(`private key file ${file} is accessible by group or others (mode 0644)`) }]);
  });
});
