import type { Logger } from '@kiln/logging';
import { KilnError } from '@kiln/core';
import { StreamBackpressureError, type EventStream } from '@kiln/streams';
import type { RawData, WebSocket } from 'ws';
import { OPEN_COMMANDS } from '../commands/auth-commands.js';
import type { CommandContext, CommandHandler, Session, StreamItem } from '../commands/types.js';
import { errorFrame, FrameError, parseClientFrame, serializeFrame, type MessageId, type ServerFrame } from './protocol.js';

/** The one command a connection answers itself (it ends one of its own streams). */
export const STOP_STREAM = 'stop_stream';

/** Close code for a client that fell too far behind a fail-closed stream: reconnect and resync. */
export const CLOSE_BACKPRESSURE = 1013;

/**
 * One WebSocket client: dispatches commands, runs its streams (one per message_id), and releases
 * every stream's listeners when the socket goes away.
 */
export class Connection {
  private readonly streams = new Map<MessageId, EventStream<StreamItem>>();
  private readonly session: Session;

  constructor(
    private readonly ws: WebSocket,
    private readonly commands: Readonly<Record<string, CommandHandler>>,
    private readonly ctx: CommandContext,
    private readonly logger: Logger,
  ) {
    this.session = { authenticated: !ctx.auth.required, token: undefined, closeAfterReply: false, bufferedBytes: () => ws.bufferedAmount };
    // A failure past the error frame (one that could not even be sent) ends with this client's
    // message, never as an unhandled rejection that takes the whole process down.
    ws.on('message', (data, isBinary) => void this.onMessage(data, isBinary).catch((err: unknown) => this.logger.error({ err }, 'websocket message failed')));
    ws.on('close', () => this.releaseAll());
    ws.on('error', (err) => this.logger.debug({ err }, 'websocket error'));
    void this.send({ event: 'server_info', data: ctx.serverInfo() });
  }

  get streamCount(): number {
    return this.streams.size;
  }

  private async onMessage(data: RawData, isBinary: boolean): Promise<void> {
    let frame;
    try {
      if (isBinary) throw new KilnError('invalid_message', 'frames must be JSON text, not binary', { field: 'frame' });
      frame = parseClientFrame(data.toString());
    } catch (err) {
      await this.send(errorFrame(err instanceof FrameError ? err.messageId : null, err));
      return;
    }
    const { command, message_id: id, args } = frame;
    try {
      if (!this.session.authenticated && !OPEN_COMMANDS.has(command)) {
        throw new KilnError('not_authenticated', 'log in first (auth/login)', { command: command.slice(0, 128) });
      }
      if (this.session.authenticated && this.session.token && !this.ctx.auth.valid(this.session.token)) {
        this.session.authenticated = false;
        throw new KilnError('not_authenticated', 'session expired; log in again (auth/login)', {});
      }
      if (command === STOP_STREAM) return void (await this.send({ message_id: id, result: { stopped: this.stop(args['message_id']) } }));
      const handler = this.commands[command];
      if (!handler) throw new KilnError('unknown_command', `unknown command ${JSON.stringify(command.slice(0, 128))}`, { command: command.slice(0, 128) });
      if (this.streams.has(id)) throw new KilnError('invalid_message', `message_id ${JSON.stringify(id)} is already in use by a stream`, { field: 'message_id', value: id });
      const outcome = await handler(this.ctx, args, this.session);
      if ('result' in outcome) await this.send({ message_id: id, result: outcome.result });
      else await this.runStream(id, outcome.stream);
      if (this.session.closeAfterReply) this.ws.close(1000, 'logged out');
    } catch (err) {
      if (!(err instanceof KilnError)) this.logger.error({ err, command }, 'command failed');
      await this.send(errorFrame(id, err));
    }
  }

  private async runStream(id: MessageId, stream: EventStream<StreamItem>): Promise<void> {
    this.streams.set(id, stream);
    try {
      for await (const item of stream) {
        if ('result' in item) {
          await this.send({ message_id: id, result: item.result });
          break;
        }
        await this.send({ message_id: id, event: item.event, data: item.data });
      }
    } catch (err) {
      // Fail closed: the error frame first, then the socket closes so the client resyncs.
      await this.send(errorFrame(id, err));
      if (err instanceof StreamBackpressureError) this.ws.close(CLOSE_BACKPRESSURE, 'fell behind; resubscribe');
    } finally {
      this.streams.delete(id);
      stream[Symbol.dispose]();
    }
  }

  private stop(target: unknown): boolean {
    const stream = (typeof target === 'number' || typeof target === 'string') && this.streams.get(target);
    if (!stream) return false;
    stream[Symbol.dispose]();
    return true;
  }

  private releaseAll(): void {
    for (const stream of this.streams.values()) stream[Symbol.dispose]();
    this.streams.clear();
  }

  /** Resolves when the frame is handed to the socket: awaiting it is the per-client backpressure. */
  private send(frame: ServerFrame): Promise<void> {
    if (this.ws.readyState !== this.ws.OPEN) return Promise.resolve();
    return new Promise((resolve) => this.ws.send(serializeFrame(frame), () => resolve()));
  }
}
