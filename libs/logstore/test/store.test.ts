import { appendFile, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError } from '@kiln/core';
import { StreamBackpressureError } from '@kiln/streams';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LogStore } from '../src/index.js';
import { collect, makeStore, numbered, tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
let store: LogStore;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
  store = await makeStore(dir);
});
afterEach(async () => {
  await store.closeAll();
  await cleanup();
});

async function rejection(promise: Promise<unknown>): Promise<KilnError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(KilnError);
  return err as KilnError;
}

describe('append and read', () => {
  it('numbers lines across appends and reads them whole, by range and by tail', async () => {
    expect(await store.append('job-1', numbered(0, 3))).toEqual({ firstSeq: 0, lineCount: 3 });
    expect(await store.append('job-1', numbered(3, 7))).toEqual({ firstSeq: 3, lineCount: 7 });
    await store.close('job-1');
    expect(await store.read('job-1')).toEqual({ jobId: 'job-1', firstSeq: 0, lines: numbered(0, 10), lineCount: 10, closed: true });
    expect((await store.read('job-1', { offset: 4, limit: 3 })).lines).toEqual(['line 4', 'line 5', 'line 6']);
    expect(await store.read('job-1', { tail: 2 })).toMatchObject({ firstSeq: 8, lines: ['line 8', 'line 9'] });
    expect((await store.read('job-1', { offset: 10 })).lines).toEqual([]);
    expect((await store.read('job-1', { tail: 50 })).lines).toEqual(numbered(0, 10));
  });

  it('reads only committed lines while a log is open and reports it open', async () => {
    await store.append('open-job', ['a', 'b']);
    const before = await store.read('open-job');
    expect(before.closed).toBe(false);
    expect(before.lines.length).toBeLessThanOrEqual(2);
    await new Promise((r) => setTimeout(r, 30));
    expect(await store.read('open-job')).toMatchObject({ lines: ['a', 'b'], lineCount: 2, closed: false });
  });

  it('seeks deep into a long log through the line index', async () => {
    const many = numbered(0, 25_000);
    await store.append('long', many);
    await store.close('long');
    const reopened = await makeStore(dir);
    expect((await reopened.read('long', { offset: 23_456, limit: 2 })).lines).toEqual(['line 23456', 'line 23457']);
    await reopened.append('long', ['more']);
    await reopened.close('long');
    expect((await reopened.read('long', { offset: 24_999 })).lines).toEqual(['line 24999', 'more']);
  });

  it('splits embedded newlines into lines and cuts runaway lines', async () => {
    const small = await makeStore(dir, { maxLineLength: 300 });
    expect(await small.append('split', ['one\ntwo', 'x'.repeat(1000)])).toEqual({ firstSeq: 0, lineCount: 3 });
    await small.close('split');
    const { lines } = await small.read('split');
    expect(lines.slice(0, 2)).toEqual(['one', 'two']);
    expect(lines[2]).toBe(`${'x'.repeat(300)} … [line truncated]`);
  });

  it('an empty append creates the log; close reports its length', async () => {
    await store.append('empty', []);
    expect(await store.close('empty')).toEqual({ lineCount: 0 });
    expect(await store.read('empty')).toMatchObject({ lines: [], lineCount: 0, closed: true });
  });

  it('caps a read by bytes so a reply stays small', async () => {
    await store.append('big', numbered(0, 1000, 'x'.repeat(100)));
    await store.close('big');
    const page = await store.read('big', {}, 10_000);
    expect(page.lines.length).toBeGreaterThan(50);
    expect(page.lines.length).toBeLessThan(120);
    expect(page.lineCount).toBe(1000);
  });
});

describe('bad input', () => {
  const badIds = ['../etc/passwd', 'a/b', '/abs', 'a\0b', '', '..', '.hidden', 'x'.repeat(200), 'a\\b'];
  it.each(badIds)('job id %j is refused with invalid_args and touches no file', async (jobId) => {
    const err = await rejection(store.append(jobId, ['x']));
    expect(err.code).toBe('invalid_args');
    expect(err.details).toMatchObject({ field: 'job_id', value: jobId });
    expect((await rejection(store.read(jobId))).code).toBe('invalid_args');
    expect((await rejection(store.delete(jobId))).code).toBe('invalid_args');
    expect(() => store.follow(jobId)).toThrow(KilnError);
    expect(await readdir(dir)).toEqual(['job-logs']);
    expect(await readdir(join(dir, 'job-logs'))).toEqual([]);
  });

  it('an unknown job is not_found for read, close and follow', async () => {
    expect((await rejection(store.read('nope'))).code).toBe('not_found');
    expect((await rejection(store.close('nope'))).code).toBe('not_found');
    const err = await rejection(collect(store.follow('nope')));
    expect(err).toMatchObject({ code: 'not_found', details: { job_id: 'nope' } });
  });

  it('negative or fractional ranges are invalid_args naming the field', async () => {
    await store.append('r', ['a']);
    expect((await rejection(store.read('r', { offset: -1 }))).details).toMatchObject({ field: 'offset', value: -1 });
    expect((await rejection(store.read('r', { tail: 1.5 }))).details).toMatchObject({ field: 'tail', value: 1.5 });
  });

  it('non-string lines are refused before anything is written', async () => {
    const err = await rejection(store.append('typed', ['ok', 7 as unknown as string]));
    expect(err.details).toMatchObject({ field: 'lines', value: 7 });
    expect(await readdir(join(dir, 'job-logs'))).toEqual([]);
  });
});

describe('delete and list', () => {
  it('lists logs and deletes one (file gone, followers ended)', async () => {
    await store.append('a', ['1']);
    await store.append('b', ['1', '2']);
    await store.close('b');
    const listed = await store.list();
    expect(listed.map((l) => [l.jobId, l.open])).toEqual([
      ['a', true],
      ['b', false],
    ]);
    const stream = store.follow('a');
    expect((await stream.next()).value).toMatchObject({ $case: 'lines' }); // history delivered, now live
    const rest = collect(stream);
    expect(await store.delete('a')).toBe(true);
    expect(await rest).toEqual({ seqs: [], lines: [], closed: undefined });
    expect(store.followerCount()).toBe(0);
    expect(await store.delete('a')).toBe(false);
    expect((await store.list()).map((l) => l.jobId)).toEqual(['b']);
  });
});

describe('follow', () => {
  it('history then live then closed, every line exactly once, while appends race the follower', async () => {
    await store.append('race', numbered(0, 500));
    await new Promise((r) => setTimeout(r, 20));
    const following = collect(store.follow('race'));
    for (let i = 500; i < 3000; i += 100) {
      await store.append('race', numbered(i, 100));
      if (i % 500 === 0) await new Promise((r) => setTimeout(r, 2));
    }
    await store.close('race');
    const { seqs, lines, closed } = await following;
    expect(closed).toBe(3000);
    expect(seqs).toEqual(Array.from({ length: 3000 }, (_, i) => i));
    expect(lines).toEqual(numbered(0, 3000));
    expect(store.followerCount('race')).toBe(0);
  });

  it('resumes from a sequence number', async () => {
    await store.append('resume', numbered(0, 10));
    await store.close('resume');
    const { seqs } = await collect(store.follow('resume', { fromSeq: 7 }));
    expect(seqs).toEqual([7, 8, 9]);
  });

  it('disposing a follower releases it', async () => {
    await store.append('leave', ['a']);
    const stream = store.follow('leave');
    expect(store.followerCount('leave')).toBe(1);
    await stream.next();
    stream[Symbol.dispose]();
    expect(store.followerCount('leave')).toBe(0);
  });

  it('a follower that stops reading is cut off with a backpressure error instead of growing without bound', async () => {
    const tiny = await makeStore(dir, { flushBytes: 1 });
    await tiny.append('flood', ['seed']);
    await tiny.close('flood');
    await tiny.append('flood', []);
    const stream = tiny.follow('flood');
    const first = await stream.next();
    expect(first.value).toMatchObject({ $case: 'lines' });
    for (let i = 0; i < 4100; i++) {
      await tiny.append('flood', [`l${i}`]);
      await tiny.flush('flood');
    }
    expect(tiny.followerCount('flood')).toBe(0);
    const err = await (async () => {
      try {
        for await (const _ of stream) {
          // drain until the error
        }
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(StreamBackpressureError);
    await tiny.closeAll();
  });
});

describe('recovery', () => {
  it('a torn last line left by a crash is never read and is cut before the next append', async () => {
    await store.append('torn', numbered(0, 5));
    await store.close('torn');
    const path = join(dir, 'job-logs', 'torn.log');
    await appendFile(path, 'half a li');
    const after = await makeStore(dir);
    expect(await after.read('torn')).toMatchObject({ lines: numbered(0, 5), lineCount: 5 });
    expect(await after.append('torn', ['line 5'])).toEqual({ firstSeq: 5, lineCount: 1 });
    await after.close('torn');
    expect(await readFile(path, 'utf8')).toBe(`${numbered(0, 6).join('\n')}\n`);
  });
});

describe('close and reopen races', () => {
  it('an append right after close waits for the close and continues the numbering', async () => {
    // Everything stays pending until close, so the close's write is large and still running when the append arrives.
    const lazy = await makeStore(dir, { flushIntervalMs: 10_000, flushBytes: 64 * 1024 * 1024 });
    await lazy.append('again', numbered(0, 300_000));
    const closing = lazy.close('again');
    const appended = lazy.append('again', ['next']);
    expect(await closing).toEqual({ lineCount: 300_000 });
    expect(await appended).toEqual({ firstSeq: 300_000, lineCount: 1 });
    await lazy.close('again');
    expect(await lazy.read('again', { tail: 2 })).toMatchObject({ firstSeq: 299_999, lines: ['line 299999', 'next'], lineCount: 300_001 });
  });
});
