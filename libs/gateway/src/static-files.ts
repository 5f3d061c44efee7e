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
 * Resolves false for requests it does not own (other methods, `/api/…`, `/ws`).
 */
export function staticFiles(root: string): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const base = resolve(root);
  return async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    } catch {
      return notFound(res, 'malformed path');
    }
    if (path.startsWith('/api/') || path === '/ws') return false;
    // No parent segments and no dotfiles; the prefix check below is the second line of defence.
    if (path.includes('\0') || path.split('/').some((part) => part.startsWith('.'))) {
      return notFound(res, 'no such file');
    }
    const page = path.endsWith('/') || extname(path) === '';
    const file = page ? join(base, 'index.html') : resolve(base, `.${path}`);
    if (file !== base && !file.startsWith(base + sep)) return notFound(res, 'no such file');
    let size: number;
    try {
      const info = await stat(file);
      if (!info.isFile()) return notFound(res, 'no such file');
      size = info.size;
    } catch {
      return notFound(res, page ? 'the web page is not built (npm run build)' : 'no such file');
    }
    res.writeHead(200, {
      'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
      'content-length': String(size),
      'cache-control': path.startsWith('/assets/') ? HASHED_ASSET_CACHE : 'no-cache',
      'x-content-type-options': 'nosniff',
    });
    if (req.method === 'HEAD') {
      res.end();
      return true;
    }
    await new Promise<void>((done) => {
      const stream = createReadStream(file);
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

function notFound(res: ServerResponse, message: string): true {
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error_code: 'not_found', details: { message } }));
  return true;
}
