import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './harness.js';

type Answer = { status: number; headers: Record<string, string | string[] | undefined>; body: string; bytes: Buffer };

/** A raw GET/HEAD: fetch() would normalise `..` segments away (and decompress) before the test sees them. */
function get(base: string, path: string, method = 'GET', headers: Record<string, string> = {}): Promise<Answer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        const bytes = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: bytes.toString('utf8'), bytes });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

const SCRIPT = `console.log(${JSON.stringify('kiln '.repeat(200))})`;

describe('the web page served by the gateway (gateway.webRoot)', () => {
  let root: string;
  let stack: Stack;
  let base: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'kiln-webroot-'));
    const www = join(root, 'www');
    await mkdir(join(www, 'assets'), { recursive: true });
    await writeFile(join(www, 'index.html'), '<!doctype html><title>Kiln</title>');
    await writeFile(join(www, 'assets', 'index-abc123.js'), 'console.log(1)');
    await writeFile(join(www, 'assets', 'index-abc123.css'), 'body{}');
    // The build leaves a gzip twin beside text files (libs/web vite.config.ts); the css here has none.
    await writeFile(join(www, 'assets', 'index-big456.js'), SCRIPT);
    await writeFile(join(www, 'assets', 'index-big456.js.gz'), gzipSync(SCRIPT));
    await writeFile(join(www, '.env'), 'SECRET=1');
    await writeFile(join(root, 'outside.txt'), 'not for the web');
    stack = await startStack({ settings: { 'gateway.webRoot': www } });
    base = stack.gateway.server!.url;
  });
  afterAll(async () => {
    await stack.close();
    await rm(root, { recursive: true, force: true });
  });

  it('serves index.html at / and for page routes, revalidated on every load', async () => {
    for (const path of ['/', '/jobs/abc', '/catalog']) {
      const res = await get(base, path);
      expect(res.status, path).toBe(200);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.headers['cache-control']).toBe('no-cache');
      expect(res.body).toContain('<title>Kiln</title>');
    }
  });

  it('serves hashed assets with their content type, cached for good; HEAD sends no body', async () => {
    const js = await get(base, '/assets/index-abc123.js');
    expect(js).toMatchObject({ status: 200, body: 'console.log(1)' });
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect((await get(base, '/assets/index-abc123.css')).headers['content-type']).toBe('text/css; charset=utf-8');
    const head = await get(base, '/assets/index-abc123.js', 'HEAD');
    expect(head).toMatchObject({ status: 200, body: '' });
    expect(head.headers['content-length']).toBe('14');
  });

  it('sends the gzip twin to a client that accepts gzip, the plain file to one that does not', async () => {
    const packed = await get(base, '/assets/index-big456.js', 'GET', { 'accept-encoding': 'br, gzip, deflate' });
    expect(packed.headers['content-encoding']).toBe('gzip');
    expect(packed.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(packed.headers['vary']).toBe('accept-encoding');
    expect(Number(packed.headers['content-length'])).toBe(packed.bytes.length);
    expect(packed.bytes.length).toBeLessThan(SCRIPT.length / 4);
    expect(gunzipSync(packed.bytes).toString('utf8')).toBe(SCRIPT);
    for (const refused of [undefined, 'identity', 'gzip;q=0', 'gzip;q=0, *', 'br']) {
      const plain = await get(base, '/assets/index-big456.js', 'GET', refused ? { 'accept-encoding': refused } : {});
      expect(plain.headers['content-encoding'], refused).toBeUndefined();
      expect(plain.body, refused).toBe(SCRIPT);
    }
    expect((await get(base, '/assets/index-big456.js', 'GET', { 'accept-encoding': '*' })).headers['content-encoding']).toBe('gzip');
    // No twin: the plain file, whatever the client accepts.
    const css = await get(base, '/assets/index-abc123.css', 'GET', { 'accept-encoding': 'gzip' });
    expect(css.headers['content-encoding']).toBeUndefined();
    expect(css.body).toBe('body{}');
  });

  it('answers 404 for a missing file and never serves outside the root or a dotfile', async () => {
    expect((await get(base, '/assets/missing-000.js')).status).toBe(404);
    for (const path of ['/../outside.txt', '/assets/../../outside.txt', '/%2e%2e/outside.txt', '/assets/%2e%2e%2f%2e%2e%2foutside.txt', '/.env', '/a%00.js', '/%E0%A4%A']) {
      const res = await get(base, path);
      expect(res.status, path).toBe(404);
      expect(res.body, path).not.toContain('not for the web');
      expect(res.body, path).not.toContain('SECRET');
    }
  });

  it('a `..` or `.` segment, plain or percent-encoded, and an encoded slash are 404, not the page', async () => {
    for (const path of ['/%2e%2e/x', '/..%2fpackage.json', '/a/%2E%2E/%2e%2e/etc/passwd', '/../x', '/a/../b', '/%2e/x', '/./x', '/assets%2findex-abc123.js', '/assets%5Cindex-abc123.js', '/jobs/%2e%2e']) {
      const res = await get(base, path);
      expect(res.status, path).toBe(404);
      expect(res.body, path).not.toContain('<title>Kiln</title>');
    }
    // Encoded characters that are not separators still decode within a segment.
    expect((await get(base, '/assets/index%2Dabc123.js')).body).toBe('console.log(1)');
  });

  it('leaves the API routes alone', async () => {
    expect((await get(base, '/api/firmware/download?token=nope')).status).toBe(403);
    expect((await get(base, '/assets/index-abc123.js', 'POST')).status).toBe(404);
  });
});

describe('without a web root', () => {
  it('/ is a plain-text hint and other paths are 404', async () => {
    const stack = await startStack();
    try {
      const base = stack.gateway.server!.url;
      expect(await get(base, '/')).toMatchObject({ status: 200, body: 'Kiln gateway: WebSocket API on /ws\n' });
      expect((await get(base, '/index.html')).status).toBe(404);
    } finally {
      await stack.close();
    }
  });
});
