import { spawn } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeStore, tempDir } from './helpers.js';

const appender = fileURLToPath(new URL('./fixtures/appender.mjs', import.meta.url));
const expected = (n: number) => `line ${n} ${'payload '.repeat(n % 7)}`.trimEnd();

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

async function waitForSize(path: string, bytes: number): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    const size = await stat(path).then((s) => s.size, () => 0);
    if (size >= bytes) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`${path} never reached ${bytes} bytes`);
}

describe('crash safety', () => {
  it('kill -9 during appends loses at most the unflushed tail and never corrupts earlier lines', async () => {
    const logs = join(dir, 'job-logs');
    const child = spawn(process.execPath, [appender, logs, 'crashy'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    await waitForSize(join(logs, 'crashy.log'), 2_000_000);
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    const store = await makeStore(dir);
    const { lines, lineCount } = await store.read('crashy');
    expect(lineCount).toBeGreaterThan(20_000);
    // Every surviving line is intact and in order: a contiguous prefix of what was appended.
    for (let i = 0; i < lines.length; i++) if (lines[i] !== expected(i)) expect.fail(`line ${i} is ${JSON.stringify(lines[i])}`);

    // Appending after the crash continues cleanly after the last complete line.
    expect(await store.append('crashy', ['after restart'])).toEqual({ firstSeq: lineCount, lineCount: 1 });
    await store.close('crashy');
    const text = await readFile(join(logs, 'crashy.log'), 'utf8');
    expect(text.endsWith('\nafter restart\n')).toBe(true);
    expect(text.split('\n').length - 1).toBe(lineCount + 1);
  });
});
