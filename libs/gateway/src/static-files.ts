import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/** Vite names built assets by content hash: a name never changes meaning, so browsers may keep it for a year. */
const HASHED_ASSET_CACHE = 'public, max-age=31536000, immutable';

/**
 * Serve the built web page from `root`: files with their content type, hashed `assets/` cached
 * for good, index.html revalidated on every load (it names the current assets), index.html for
 * page routes (paths without an extension), 404 for missing files, and nothing outside `root`.
 * A file with a gzip twin (`<file>.gz`, written by the web page's build) is sent compressed to a
 * client that accepts gzip: the page is compressed once at build time, never per request.
 * Resolves false for requests it does not own (other methods, `/api/…`, `/ws`).
 */
export function staticFiles(root: string): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const base = resolve(root);
  return async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const segments = requestSegments(req.url ?? '/');
    if (segments === undefined) return notFound(res, 'malformed path');
    const path = `/${segments.join('/')}`;
    if (path.startsWith('/api/') || path === '/ws') return false;
    // No parent segments, no dotfiles and no separators inside a segment (`%2f`, `%5c`, NUL); the
    // prefix check below is the second line of defence.
    if (segments.some((part) => part.startsWith('.') || /[/\\\0]/.test(part))) return notFound(res, 'no such file');
    const page = path.endsWith('/') || extname(path) === '';
    const file = page ? join(base, 'index.html') : resolve(base, `.${path}`);
    if (file !== base && !file.startsWith(base + sep)) return notFound(res, 'no such file');
    const size = await fileSize(file);
    if (size === undefined) return notFound(res, page ? 'the web page is not built (npm run build)' : 'no such file');
    const gzipSize = acceptsGzip(req.headers['accept-encoding']) ? await fileSize(`${file}.gz`) : undefined;
    const sent = gzipSize === undefined ? file : `${file}.gz`;
    res.writeHead(200, {
      'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
      'content-length': String(gzipSize ?? size),
      'cache-control': path.startsWith('/assets/') ? HASHED_ASSET_CACHE : 'no-cache',
      'x-content-type-options': 'nosniff',
      // Caches must keep the compressed and the plain answer apart.
      vary: 'accept-encoding',
      ...(gzipSize === undefined ? {} : { 'content-encoding': 'gzip' }),
    });
    if (req.method === 'HEAD') {
      res.end();
      return true;
    }
    await new Promise<void>((done) => {
      const stream = createReadStream(sent);
      stream.on('error', (err) => {
        res.destroy(err);
        done();
      });
      stream.on('end', done);
      stream.pipe(res);
    });
    return true;
  };
}

/**
 * The request path's segments as sent, each percent-decoded on its own; undefined when one is not
 * valid percent-encoding. Not `new URL().pathname`: it resolves `..` and `%2e%2e` segments away
 * before anyone can see them, so `/%2e%2e/x` would read as `/x` (a page route) instead of a parent segment.
 */
function requestSegments(target: string): string[] | undefined {
  // origin-form `/a/b?q`; absolute-form (`http://host/a/b`, sent to proxies) is reduced to its path.
  const path = target.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '').split(/[?#]/, 1)[0]!;
  if (!path.startsWith('/')) return undefined;
  try {
    return path.slice(1).split('/').map((part) => decodeURIComponent(part));
  } catch {
    return undefined;
  }
}

/** The size of a regular file; undefined when there is none. */
async function fileSize(path: string): Promise<number | undefined> {
  const info = await stat(path).catch(() => undefined);
  return info?.isFile() ? info.size : undefined;
}

/** `Accept-Encoding` weighs gzip above 0: listed by name, else through `*` (RFC 9110 §12.5.3). */
function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  const weights = new Map<string, number>();
  for (const part of header.split(',')) {
    const [coding, ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    if (!coding) continue;
    const q = params.find((p) => p.startsWith('q='));
    weights.set(coding, q === undefined ? 1 : Number(q.slice(2)));
  }
  return (weights.get('gzip') ?? weights.get('*') ?? 0) > 0;
}

function notFound(res: ServerResponse, message: string): true {
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error_code: 'not_found', details: { message } }));
  return true;
}
