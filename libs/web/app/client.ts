/**
 * A browser client of Kiln's WebSocket API (`{command, message_id, args}` → result / event / error
 * frames). It reconnects with capped exponential backoff; every call and stream in flight when the
 * socket drops fails with `disconnected`, and `onOpen` runs again so the page can log in and
 * resubscribe (state is rebuilt from subscribe_events' snapshot, never patched across a gap).
 */

export type ConnectionState = 'connecting' | 'open' | 'reconnecting';

export interface ErrorFrame {
  error_code: string;
  details: { message: string } & Record<string, unknown>;
}

export class ApiError extends Error {
  constructor(
    readonly code: string,
    readonly details: Record<string, unknown>,
  ) {
    super(typeof details['message'] === 'string' ? details['message'] : code);
  }
}

export interface StreamHandlers {
  event(name: string, data: unknown): void;
  /** The stream's final result (follow_job ends with the job). */
  result?(value: unknown): void;
  /** An error frame, or `disconnected` when the socket went away. */
  error?(error: ApiError): void;
}

export interface StreamHandle {
  stop(): void;
}

interface Frame {
  message_id?: number | string | null;
  event?: string;
  data?: unknown;
  result?: unknown;
  error_code?: string;
  details?: Record<string, unknown>;
}

/** First retry after 250 ms, doubling to 8 s: quick after a restart, gentle on a host that is down. */
const BACKOFF_FIRST_MS = 250;
const BACKOFF_MAX_MS = 8_000;

export interface KilnSocketOptions {
  url: string;
  onState(state: ConnectionState): void;
  /** Runs on every (re)connect once the socket is open. */
  onOpen(): void;
}

export class KilnSocket {
  private ws: WebSocket | undefined;
  private nextId = 1;
  private attempt = 0;
  private readonly calls = new Map<number, { resolve(v: unknown): void; reject(e: ApiError): void }>();
  private readonly streams = new Map<number, StreamHandlers>();

  constructor(private readonly options: KilnSocketOptions) {}

  connect(): void {
    this.options.onState(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const ws = new WebSocket(this.options.url);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      performance.mark('kiln:ws-open');
      this.options.onState('open');
      this.options.onOpen();
    };
    ws.onmessage = (message: MessageEvent<string>) => this.onFrame(JSON.parse(message.data) as Frame);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.failAll(new ApiError('disconnected', { message: 'connection lost' }));
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
      this.attempt++;
      this.options.onState('reconnecting');
      setTimeout(() => this.connect(), delay);
    };
  }

  /** Drop the socket as if the network did (the reconnect logic takes over). */
  drop(): void {
    this.ws?.close();
  }

  call<T>(command: string, args: Record<string, unknown> = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const id = this.send(command, args);
      if (id === undefined) return reject(new ApiError('disconnected', { message: 'not connected' }));
      this.calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
    });
  }

  stream(command: string, args: Record<string, unknown>, handlers: StreamHandlers): StreamHandle {
    const id = this.send(command, args);
    if (id === undefined) {
      queueMicrotask(() => handlers.error?.(new ApiError('disconnected', { message: 'not connected' })));
      return { stop: () => undefined };
    }
    this.streams.set(id, handlers);
    return {
      stop: () => {
        if (this.streams.delete(id)) this.send('stop_stream', { message_id: id });
      },
    };
  }

  private send(command: string, args: Record<string, unknown>): number | undefined {
    if (this.ws?.readyState !== WebSocket.OPEN) return undefined;
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ command, message_id: id, args }));
    return id;
  }

  private onFrame(frame: Frame): void {
    if (typeof frame.message_id !== 'number') return; // server_info, or an error about an unreadable frame
    const id = frame.message_id;
    const call = this.calls.get(id);
    const stream = this.streams.get(id);
    if (frame.error_code !== undefined) {
      const error = new ApiError(frame.error_code, frame.details ?? {});
      this.calls.delete(id);
      this.streams.delete(id);
      call?.reject(error);
      stream?.error?.(error);
    } else if ('result' in frame) {
      this.calls.delete(id);
      this.streams.delete(id);
      call?.resolve(frame.result);
      stream?.result?.(frame.result);
    } else if (frame.event !== undefined) {
      stream?.event(frame.event, frame.data);
    }
  }

  private failAll(error: ApiError): void {
    const calls = [...this.calls.values()];
    const streams = [...this.streams.values()];
    this.calls.clear();
    this.streams.clear();
    for (const c of calls) c.reject(error);
    for (const s of streams) s.error?.(error);
  }
}
