import { describe, expect, it } from 'vitest';
import { splitLines } from '../src/index.js';

async function collect(chunks: (string | Buffer)[], max?: number): Promise<string[]> {
  async function* source() {
    yield* chunks;
  }
  const out: string[] = [];
  for await (const line of splitLines(source(), max)) out.push(line);
  return out;
}

describe('splitLines', () => {
  it.each<[string, (string | Buffer)[], string[]]>([
    ['plain lines', ['a\nb\n'], ['a', 'b']],
    ['unterminated tail', ['a\nb'], ['a', 'b']],
    ['line split across chunks', ['INFO Read', 'ing configuration\n'], ['INFO Reading configuration']],
    ['CRLF', ['a\r\nb\r\n'], ['a', 'b']],
    ['CRLF split across chunks', ['a\r', '\nb\n'], ['a', 'b']],
    ['empty LF lines are kept', ['a\n\nb\n'], ['a', '', 'b']],
    ['empty CRLF line is kept', ['a\r\n\r\nb\r\n'], ['a', '', 'b']],
    [
      'carriage-return redraws become lines',
      ['\rUploading: [==  ] 50% \rUploading: [====] 100% Done...\r\n'],
      ['Uploading: [==  ] 50% ', 'Uploading: [====] 100% Done...'],
    ],
    ['redraw split across chunks', ['\rUp 10%', ' \rUp 2', '0% \r', 'Up 30%\n'], ['Up 10% ', 'Up 20% ', 'Up 30%']],
    ['trailing bare CR', ['progress 5%\r'], ['progress 5%']],
    ['consecutive CRs', ['a\r\rb\n'], ['a', 'b']],
    ['CR at chunk end then a redraw', ['10%\r', '20%\n'], ['10%', '20%']],
    ['multi-byte UTF-8 split across chunks', [Buffer.from([0x63, 0x61, 0x66, 0xc3]), Buffer.from([0xa9, 0x0a])], ['café']],
  ])('%s', async (_name, chunks, expected) => {
    expect(await collect(chunks)).toEqual(expected);
  });

  it('matches a whole-text reference split for random chunkings', async () => {
    // Reference semantics: \n and \r\n end a line (empty ones kept), a bare \r ends a redraw (empty ones dropped).
    const reference = (text: string): string[] => {
      const out: string[] = [];
      const breaks = /\r\n|\n|\r/g;
      let last = 0;
      for (let m = breaks.exec(text); m !== null; m = breaks.exec(text)) {
        const segment = text.slice(last, m.index);
        if (m[0] !== '\r' || segment !== '') out.push(segment);
        last = breaks.lastIndex;
      }
      if (last < text.length) out.push(text.slice(last));
      return out;
    };
    let seed = 42;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 300; round++) {
      const text = Array.from({ length: random(40) }, () => 'ab\r\n'.charAt(random(4))).join('');
      const chunks: string[] = [];
      for (let i = 0; i < text.length; ) {
        const size = 1 + random(6);
        chunks.push(text.slice(i, i + size));
        i += size;
      }
      expect(await collect(chunks), JSON.stringify(text)).toEqual(reference(text));
    }
  });

  it('cuts a line without breaks into bounded pieces', async () => {
    const out = await collect(['x'.repeat(25), 'y'.repeat(10), '\nend\n'], 10);
    expect(out.every((l) => l.length <= 10)).toBe(true);
    expect(out.join('')).toBe(`${'x'.repeat(25)}${'y'.repeat(10)}end`);
    expect(out.at(-1)).toBe('end');
  });

  it('pulls the next chunk only when the consumer asks', async () => {
    let pulled = 0;
    async function* source() {
      for (let i = 0; i < 100; i++) {
        pulled++;
        yield `line ${i}\n`;
      }
    }
    const it = splitLines(source())[Symbol.asyncIterator]();
    await it.next();
    await it.next();
    expect(pulled).toBe(2);
    await it.return(undefined);
  });
});
