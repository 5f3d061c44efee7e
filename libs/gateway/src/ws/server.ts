import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { parseListen } from '@kiln/config';
import { KilnError, nodeHttp } from '@kiln/core';
import type { Logger } from '@kiln/logging';
import type { WebSocketServer } from 'ws';
import type { CommandContext, CommandHandler } from '../commands/types.js';
import { Connection } from './connection.js';

export interface GatewayServer {
  readonly url: string;
  readonly port: number;
  connectionCount(): number;
  streamCount(): number;
  close(): Promise<void>;
}

export interface GatewayServerOptions {
  listen: string;
  maxMessageBytes: number;
  commands: Readonly<Record<string, CommandHandler>>;
  context: (port: number) => CommandContext;
  /** Extra HTTP routes; resolves true when it handled the request. */
  http?: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
  logger: Logger;
}

/** HTTP server with the WebSocket API on `/ws`. */
export async function startGatewayServer(options: GatewayServerOptions): Promise<GatewayServer> {
  const connections = new Set<Connection>();
  // The WebSocket library (and the https, tls, zlib modules it pulls in) loads with the first
  // upgrade: an idle gateway that nobody has opened holds only the HTTP server.
  let wss: Promise<WebSocketServer> | undefined;
  const webSockets = (): Promise<WebSocketServer> =>
    (wss ??= import('ws').then(({ WebSocketServer: Server }) => new Server({ noServer: true, maxPayload: options.maxMessageBytes })));
  const server: Server = nodeHttp.createServer((req, res) => {
    void (options.http?.(req, res) ?? Promise.resolve(false)).then(
      (handled) => handled || fallback(req, res),
      (err: unknown) => {
        options.logger.error({ err }, 'http route failed');
        if (!res.headersSent) res.writeHead(500).end();
      },
    );
  });
  const fallback = (req: IncomingMessage, res: ServerResponse): void => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method === 'GET' && path === '/') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('Kiln gateway: WebSocket API on /ws\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error_code: 'not_found', details: { message: `no route ${req.method} ${path}` } }));
  };
  // Built once the port is bound (the server info names it); no socket is accepted before that.
  const bound: { context?: CommandContext } = {};
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/ws') {
      socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
      return;
    }
    void webSockets().then(
      (server) =>
        server.handleUpgrade(req, socket, head, (ws) => {
          const connection = new Connection(ws, options.commands, bound.context!, options.logger);
          connections.add(connection);
          ws.on('close', () => connections.delete(connection));
        }),
      (err: unknown) => {
        options.logger.error({ err }, 'websocket upgrade failed');
        socket.destroy();
      },
    );
  });
  const { host, port } = parseListen(options.listen, 'gateway.listen');
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new KilnError('unavailable', `gateway cannot listen on ${options.listen}: ${err.message}`, { listen: options.listen })));
    server.listen(port, host, () => resolve());
  });
  const boundPort = (server.address() as AddressInfo).port;
  bound.context = options.context(boundPort);
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`,
    port: boundPort,
    connectionCount: () => connections.size,
    streamCount: () => [...connections].reduce((n, c) => n + c.streamCount, 0),
    async close() {
      const sockets = await wss?.catch(() => undefined);
      for (const ws of sockets?.clients ?? []) ws.close(1001, 'server shutting down');
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        setTimeout(() => {
          for (const ws of sockets?.clients ?? []) ws.terminate();
        }, 1_000).unref();
      });
      sockets?.close();
    },
  };
}
