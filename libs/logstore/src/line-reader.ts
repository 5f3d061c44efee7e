import { open, type FileHandle } from 'node:fs/promises';

const CHUNK = 64 * 1024;
const NEWLINE = 0x0a;

export interface LineWindow {
  firstSeq: number;
  lines: string[];
}

/** Byte offsets of every Nth line, so reading deep into a big log does not rescan it from the start. */
export class LineIndex {
  static readonly STRIDE = 1000;
  /** offsets[k] = byte offset of line k * STRIDE */
  readonly offsets: number[] = [0];

  record(lineNumber: number, byteOffset: number): void {
    if (lineNumber % LineIndex.STRIDE === 0 && lineNumber / LineIndex.STRIDE === this.offsets.length) this.offsets.push(byteOffset);
  }

  /** The closest known (line, offset) at or before `line`. */
  seek(line: number): { line: number; offset: number } {
    const k = Math.min(Math.floor(line / LineIndex.STRIDE), this.offsets.length - 1);
    return { line: k * LineIndex.STRIDE, offset: this.offsets[k]! };
  }
}

/**
 * Read complete lines [first, first+max) from a log file, stopping at `endByte` (what has been
 * committed) and at `maxBytes` of text. A trailing line without its newline (torn write) is never returned.
 */
export async function readLineWindow(
  path: string,
  first: number,
  max: number,
  endByte: number,
  maxBytes: number,
  index?: LineIndex,
): Promise<LineWindow> {
  const handle = await open(path, 'r');
  try {
    const start = index ? index.seek(first) : { line: 0, offset: 0 };
    return await scan(handle, start.line, start.offset, first, max, endByte, maxBytes);
  } finally {
    await handle.close();
  }
}

async function scan(handle: FileHandle, lineNo: number, offset: number, first: number, max: number, endByte: number, maxBytes: number): Promise<LineWindow> {
  const lines: string[] = [];
  let bytes = 0;
  let carry: Buffer | undefined;
  const buffer = Buffer.allocUnsafe(CHUNK);
  while (offset < endByte && lines.length < max && bytes < maxBytes) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(CHUNK, endByte - offset), offset);
    if (bytesRead === 0) break;
    offset += bytesRead;
    let chunk = buffer.subarray(0, bytesRead);
    if (carry) {
      chunk = Buffer.concat([carry, chunk]);
      carry = undefined;
    }
    let from = 0;
    for (let nl = chunk.indexOf(NEWLINE, from); nl !== -1; nl = chunk.indexOf(NEWLINE, from)) {
      if (lineNo >= first) {
        const line = chunk.toString('utf8', from, nl);
        lines.push(line);
        bytes += nl - from + 1;
        if (lines.length >= max || bytes >= maxBytes) return { firstSeq: first, lines };
      }
      lineNo++;
      from = nl + 1;
    }
    if (from < chunk.length) carry = Buffer.from(chunk.subarray(from));
  }
  return { firstSeq: first, lines };
}

/**
 * Count complete lines and find where the last one ends. Used when a log is first touched after a
 * restart: bytes past `completeBytes` are a torn tail from a crash mid-write.
 */
export async function scanLog(path: string): Promise<{ lineCount: number; completeBytes: number; size: number; index: LineIndex }> {
  const handle = await open(path, 'r');
  const index = new LineIndex();
  try {
    const { size } = await handle.stat();
    const buffer = Buffer.allocUnsafe(CHUNK);
    let offset = 0;
    let lineCount = 0;
    let completeBytes = 0;
    while (offset < size) {
      const { bytesRead } = await handle.read(buffer, 0, Math.min(CHUNK, size - offset), offset);
      if (bytesRead === 0) break;
      for (let nl = buffer.indexOf(NEWLINE, 0); nl !== -1 && nl < bytesRead; nl = buffer.indexOf(NEWLINE, nl + 1)) {
        lineCount++;
        completeBytes = offset + nl + 1;
        index.record(lineCount, completeBytes);
      }
      offset += bytesRead;
    }
    return { lineCount, completeBytes, size, index };
  } finally {
    await handle.close();
  }
}

/** The last `count` complete lines before `endByte`, read backwards so a tail of a huge log is cheap. */
export async function readTail(path: string, count: number, endByte: number, maxBytes: number): Promise<string[]> {
  if (count <= 0 || endByte === 0) return [];
  const handle = await open(path, 'r');
  try {
    const chunks: Buffer[] = [];
    let newlines = 0;
    let position = endByte;
    // count+1 newlines bound the last `count` lines (the extra one marks where the first starts).
    while (position > 0 && newlines <= count) {
      const size = Math.min(CHUNK, position);
      position -= size;
      const buffer = Buffer.allocUnsafe(size);
      await handle.read(buffer, 0, size, position);
      chunks.unshift(buffer);
      for (let i = 0; i < size; i++) if (buffer[i] === NEWLINE) newlines++;
      if (endByte - position > maxBytes + CHUNK) break;
    }
    const text = Buffer.concat(chunks).toString('utf8');
    const lines = text.split('\n');
    lines.pop(); // text ends with the newline of the last committed line
    if (position > 0) lines.shift(); // partial first line of the window
    const tail = lines.slice(-count);
    let bytes = 0;
    let keep = tail.length;
    while (keep > 0 && (bytes += Buffer.byteLength(tail[keep - 1]!) + 1) <= maxBytes) keep--;
    return tail.slice(keep);
  } finally {
    await handle.close();
  }
}
