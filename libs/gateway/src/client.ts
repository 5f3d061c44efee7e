import type WebSocket from 'ws';

export type Frame = Record<string, unknown> & { message_id?: number | string | null; event?: string; result?: unknown; error_code?: string; data?: unknown };

/**
 * A WebSocket client of the API (scripts, tests): send commands, await their result or error, and
 * collect stream frames as they arrive.
 */
export class GatewayClient {
  readonly frames: Frame[] = [];
  private nextId = 1;
  private waiters: Array<{ match: (f: Frame) => boolean; resolve: (f: Frame) => void }> = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Frame;
      this.frames.push(frame);
      for (const w of [...this.waiters]) {
        if (w.match(frame)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(frame);
        }
      }
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static async connect(url: string): Promise<GatewayClient> {
    // Imported here, not at the top: the gateway's index exports this client, and a server that never
    // connects out should not load a WebSocket library for it.
    const { default: WebSocketClient } = await import('ws');
    const ws = new WebSocketClient(url);
    const client = new GatewayClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return client;
  }

  /** Send a command; returns its message id. */
  send(command: string, args: Record<string, unknown> = {}): number {
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ command, message_id: id, args }));
    return id;
  }

  sendRaw(text: string): void {
    this.ws.send(text);
  }

  /** The first frame (already received or future) that matches. */
  next(match: (f: Frame) => boolean, timeoutMs = 20_000): Promise<Frame> {
    const seen = this.frames.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames.slice(-3))}`)), timeoutMs);
      this.waiters.push({ match, resolve: (f) => (clearTimeout(timer), resolve(f)) });
    });
  }

  /** Send and await the final frame (result or error) for it. */
  async call(command: string, args: Record<string, unknown> = {}): Promise<Frame> {
    const id = this.send(command, args);
    return this.next((f) => f.message_id === id && ('result' in f || 'error_code' in f));
  }

  close(): void {
    this.ws.close();
  }
}
