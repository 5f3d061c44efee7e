import { StringDecoder } from 'node:string_decoder';

/** Longest line kept whole; a longer run without a line break is cut into pieces of this size. */
export const MAX_LINE_CHARS = 64 * 1024;

const LF = 10;

/**
 * Split a byte stream into lines on \n, \r\n and bare \r, so a progress bar redrawn with \r yields
 * each redraw as a line (empty redraw segments are skipped; empty \n lines are kept). Pull-based: the
 * next chunk is read only after the previous chunk's lines were taken, so a slow consumer backs up
 * into the child's pipe. Memory stays bounded by about one chunk plus `maxLineChars`.
 */
export async function* splitLines(chunks: AsyncIterable<Buffer | string>, maxLineChars = MAX_LINE_CHARS): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let carry = '';
  // The previous character was \r: a \n next makes it a CRLF break, anything else a redraw.
  let pendingCr = false;

  function* take(text: string): Generator<string> {
    let start = 0;
    if (pendingCr && text.length > 0) {
      pendingCr = false;
      if (text.charCodeAt(0) === LF) {
        yield carry; // \r\n split across chunks: an empty CRLF line survives
        carry = '';
        start = 1;
      } else if (carry !== '') {
        yield carry;
        carry = '';
      }
    }
    // indexOf scans natively; the positions are cached so a text without \r is scanned once.
    let lf = text.indexOf('\n', start);
    let cr = text.indexOf('\r', start);
    while (lf !== -1 || cr !== -1) {
      if (cr === -1 || (lf !== -1 && lf < cr)) {
        yield carry + text.slice(start, lf);
        carry = '';
        start = lf + 1;
        lf = text.indexOf('\n', start);
        continue;
      }
      const segment = carry + text.slice(start, cr);
      carry = '';
      if (cr + 1 === text.length) {
        // \r at the end: whether it is CRLF or a redraw depends on the next chunk.
        carry = segment;
        pendingCr = true;
        start = text.length;
        break;
      }
      if (text.charCodeAt(cr + 1) === LF) {
        yield segment;
        start = cr + 2;
        if (lf === cr + 1) lf = text.indexOf('\n', start);
      } else {
        if (segment !== '') yield segment; // a redraw; a leading \r leaves an empty segment
        start = cr + 1;
      }
      cr = text.indexOf('\r', start);
    }
    carry += text.slice(start);
    while (carry.length > maxLineChars) {
      yield carry.slice(0, maxLineChars);
      carry = carry.slice(maxLineChars);
    }
  }

  for await (const chunk of chunks) {
    yield* take(typeof chunk === 'string' ? chunk : decoder.write(chunk));
  }
  yield* take(decoder.end());
  if (carry !== '') yield carry;
}
