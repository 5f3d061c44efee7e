import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseListen } from '@kiln/config';
import { KilnError, nodeHttp, storageHealth, toKilnError } from '@kiln/core';
import type { ControlAction, Supervisor } from './supervisor.js';

export interface HealthServer {
  readonly url: string;
  close(): Promise<void>;
}

const ACTIONS: readonly ControlAction[] = ['stop', 'start', 'restart'];

/**
 * The HTTP face of a host: `GET /health` (status, 200 when every service runs and no write is failing
 * for lack of space, else 503),
 * `GET /ready` (readiness probe), `POST /services/<name>/<stop|start|restart>` (the same control
 * the bus offers, for hosts with no external bus). Bound to loopback by default.
 */
export async function startHealthServer(supervisor: Supervisor, listen: string): Promise<HealthServer> {
  const { host, port } = parseListen(listen, 'supervisor.healthListen');
  const server = nodeHttp.createServer((req, res) => {
    handle(supervisor, req, res).catch((err: unknown) => reply(res, 500, { error: toKilnError(err).toJSON() }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new KilnError('unavailable', `health endpoint cannot listen on ${listen}: ${err.message}`, { listen })));
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}`,
    close: () => closeServer(server),
  };
}

async function handle(supervisor: Supervisor, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  // A directory that was full may have room again (firmware/clear, an operator's rm): look before answering.
  if (req.method === 'GET' && (url.pathname === '/health' || url.pathname === '/ready')) await storageHealth.recheck();
  if (req.method === 'GET' && url.pathname === '/health') {
    const status = supervisor.status();
    return reply(res, status.ready ? 200 : 503, status);
  }
  if (req.method === 'GET' && url.pathname === '/ready') {
    const { ready } = supervisor.status();
    return reply(res, ready ? 200 : 503, { ready });
  }
  const control = /^\/services\/([^/]+)\/([^/]+)$/.exec(url.pathname);
  if (req.method === 'POST' && control) {
    const [, service, action] = control as unknown as [string, string, string];
    if (!ACTIONS.includes(action as ControlAction)) {
      return reply(res, 400, { error: { code: 'invalid_args', message: `action must be one of ${ACTIONS.join(', ')}`, details: { field: 'action', value: action } } });
    }
    try {
      await supervisor.control(decodeURIComponent(service), action as ControlAction);
    } catch (err) {
      const error = toKilnError(err);
      return reply(res, error.code === 'not_found' ? 404 : error.code === 'invalid_args' ? 400 : 409, { error: error.toJSON() });
    }
    const entry = supervisor.status().services.find((s) => s.name === service);
    return reply(res, 200, entry);
  }
  reply(res, 404, { error: { code: 'not_found', message: `no route ${req.method} ${url.pathname}`, details: {} } });
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
