/**
 * `node:http`, read as Node's own CommonJS exports object. Kiln's servers take it from here instead of
 * `import { createServer } from 'node:http'`: on Node 22 and 24 an ESM import of a built-in builds a
 * namespace from every export, and reading http's lazy `WebSocket`/`CloseEvent`/`MessageEvent`
 * getters loads undici (with tls, http2 and zlib) — 11–14 MB of RSS in a process that serves plain
 * HTTP (`npm run bench:idle`). The exports are the same functions; only the getters stay unread.
 * Type-only imports from 'node:http' cost nothing and stay as they are.
 */
export const nodeHttp = process.getBuiltinModule('node:http');
