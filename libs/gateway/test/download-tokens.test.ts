import { describe, expect, it } from 'vitest';
import { DOWNLOAD_TOKEN_TTL_MS, DownloadTokens } from '../src/download.js';

describe('download tokens', () => {
  it('are unguessable, single-use and expire', () => {
    let now = 1_000;
    const tokens = new DownloadTokens(() => now);
    const a = tokens.mint('a.yaml', 'firmware.bin');
    const b = tokens.mint('a.yaml', 'firmware.bin');
    expect(a).not.toBe(b);
    expect(Buffer.from(a, 'base64url')).toHaveLength(32);
    expect(tokens.consume(a)).toMatchObject({ configuration: 'a.yaml', file: 'firmware.bin' });
    expect(tokens.consume(a)).toBeUndefined();
    now += DOWNLOAD_TOKEN_TTL_MS;
    expect(tokens.consume(b)).toBeUndefined();
  });

  it('expired grants are swept when new ones are minted', () => {
    let now = 0;
    const tokens = new DownloadTokens(() => now);
    for (let i = 0; i < 10; i++) tokens.mint('a.yaml', 'firmware.bin');
    now += DOWNLOAD_TOKEN_TTL_MS + 1;
    tokens.mint('a.yaml', 'firmware.bin');
    expect(tokens.size).toBe(1);
  });
});
