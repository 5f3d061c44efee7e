import { KilnError, toKilnError } from '@kiln/core';
import { connect, errors, headers, type Msg, type NatsConnection, type Subscription as NatsSubscription } from '@nats-io/transport-node';
import { checkData, checkFunction, checkQueue, EMPTY, resolveTimeout } from './args.js';
import { decodeError, ERROR_HEADER } from './error-wire.js';
import { busClosed, noResponders, requestAborted, requestTimedOut } from './errors.js';
import { safeReporter } from './handler-errors.js';
import { serve, type ReplyOutcome, type Replier } from './responder.js';
import { validateSubject } from './subject.js';
import { Subscription } from './subscription.js';
import type { Bus, BusMessage, BusOptions, BusSubscription, HandlerErrorReporter, MessageHandler, Responder, SubscribeOptions } from './types.js';

export interface NatsBusOptions extends BusOptions {
  servers: string | string[];
  /** Client name shown in the server's monitoring. */
  name?: string;
  /** How long the initial connect may take. Default 5000. */
  timeoutMs?: number;
  /**
   * Namespace on a shared server: every subject goes out as `<prefix>.<subject>` and comes back
   * without it, so two Kiln installations (or test runs) on one NATS server never hear each other.
   */
  prefix?: string;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

export async function connectNatsBus(options: NatsBusOptions): Promise<Bus> {
  const { servers } = options;
  if (options.prefix !== undefined) validateSubject(options.prefix, { wildcards: false });
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers,
      ...(options.name === undefined ? {} : { name: options.name }),
      timeout: options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      // Once connected, a restarting server is an outage to ride out, not a reason to drop the bus.
      maxReconnectAttempts: -1,
    });
  } catch (err) {
    throw new KilnError('unavailable', `cannot reach NATS at ${String(servers)}`, { servers }, { cause: err });
  }
  return new NatsBus(nc, options, options.prefix ? `${options.prefix}.` : '');
}

/** NATS hands out Buffer views; give subscribers a plain Uint8Array like the in-process bus does. */
function toBusMessage(subject: string, data: Uint8Array): BusMessage {
  return { subject, data: data.constructor === Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** NATS client errors in Kiln's vocabulary: a gone connection is 'unavailable', a bad argument 'invalid_args'. */
function fromNatsError(err: unknown): KilnError {
  if (err instanceof KilnError) return err;
  if (err instanceof errors.ClosedConnectionError || err instanceof errors.DrainingConnectionError) return busClosed();
  if (err instanceof errors.InvalidArgumentError || err instanceof errors.InvalidSubjectError) {
    return new KilnError('invalid_args', err.message, {}, { cause: err });
  }
  return toKilnError(err);
}

class NatsBus implements Bus {
  readonly kind = 'nats' as const;
  readonly #nc: NatsConnection;
  readonly #live = new Set<Subscription>();
  readonly #replies = new WeakMap<BusMessage, Replier>();
  readonly #report: HandlerErrorReporter;
  #closing: Promise<void> | undefined;

  readonly #prefix: string;

  constructor(nc: NatsConnection, options: BusOptions, prefix: string) {
    this.#nc = nc;
    this.#prefix = prefix;
    this.#report = safeReporter(options.onHandlerError);
    // A connection that dies for good (e.g. auth revoked) ends the bus instead of leaving it half alive.
    void nc.closed().then(() => {
      this.#closing ??= Promise.resolve();
      this.#endAll();
    });
  }

  publish(subject: string, data?: Uint8Array): void {
    this.#assertOpen();
    validateSubject(subject, { wildcards: false });
    const payload = checkData(data);
    try {
      this.#nc.publish(this.#prefix + subject, payload);
    } catch (err) {
      throw fromNatsError(err);
    }
  }

  subscribe(subject: string, handler?: MessageHandler, options?: SubscribeOptions): BusSubscription {
    this.#assertOpen();
    validateSubject(subject, { wildcards: true });
    checkFunction('handler', handler, true);
    checkQueue(options?.queue);
    return this.#attach(subject, handler, options?.queue, (sub, m) => sub.deliver(toBusMessage(this.#strip(m.subject), m.data)));
  }

  respond(subject: string, responder: Responder, options?: SubscribeOptions): BusSubscription {
    this.#assertOpen();
    validateSubject(subject, { wildcards: true });
    checkFunction('responder', responder, false);
    checkQueue(options?.queue);
    const handler: MessageHandler = (msg) => void serve(responder, msg, this.#replies.get(msg), this.#report);
    return this.#attach(subject, handler, options?.queue, (sub, m) => {
      const msg = toBusMessage(this.#strip(m.subject), m.data);
      if (m.reply) this.#replies.set(msg, (outcome) => this.#reply(m, outcome));
      sub.deliver(msg);
    });
  }

  async request(subject: string, data?: Uint8Array, options?: { timeoutMs?: number }): Promise<BusMessage> {
    this.#assertOpen();
    validateSubject(subject, { wildcards: false });
    const payload = checkData(data);
    const timeoutMs = resolveTimeout(options?.timeoutMs);
    let reply: Msg;
    try {
      reply = await this.#nc.request(this.#prefix + subject, payload, { timeout: timeoutMs });
    } catch (err) {
      if (err instanceof errors.TimeoutError) throw requestTimedOut(subject, timeoutMs);
      if (err instanceof errors.RequestError && err.isNoResponders()) throw noResponders(subject);
      if (err instanceof errors.RequestError || err instanceof errors.ClosedConnectionError || err instanceof errors.DrainingConnectionError) {
        throw requestAborted(subject, err);
      }
      throw fromNatsError(err);
    }
    const error = reply.headers?.get(ERROR_HEADER);
    if (error) throw decodeError(error, subject);
    return toBusMessage(subject, reply.data);
  }

  subscriptionCount(): number {
    return this.#live.size;
  }

  async flush(): Promise<void> {
    this.#assertOpen();
    try {
      await this.#nc.flush();
    } catch (err) {
      throw fromNatsError(err);
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    try {
      // Drain, not close: messages in flight reach their subscribers and queued publishes reach the server.
      if (!this.#nc.isClosed()) await this.#nc.drain();
    } catch {
      await this.#nc.close().catch(() => undefined);
    }
    this.#endAll();
  }

  #attach(
    subject: string,
    handler: MessageHandler | undefined,
    queue: string | undefined,
    onMessage: (sub: Subscription, m: Msg) => void,
  ): BusSubscription {
    let natsSub: NatsSubscription | undefined;
    const sub: Subscription = new Subscription(subject, handler, {
      report: this.#report,
      detach: () => {
        this.#live.delete(sub);
        // After close the connection already dropped the interest; UNSUB would only throw.
        if (natsSub && !this.#nc.isClosed()) natsSub.unsubscribe();
      },
    });
    try {
      natsSub = this.#nc.subscribe(this.#prefix + subject, {
        ...(queue === undefined ? {} : { queue }),
        callback: (err, m) => {
          if (err) {
            // Terminal for this subscription (e.g. a permission violation): say so and end it.
            this.#report(err, subject);
            sub.unsubscribe();
            return;
          }
          onMessage(sub, m);
        },
      });
    } catch (err) {
      throw fromNatsError(err);
    }
    this.#live.add(sub);
    return sub;
  }

  #reply(m: Msg, outcome: ReplyOutcome): void {
    // The requester was already told the bus closed; a late answer has nowhere to go.
    if (this.#closing) return;
    if ('data' in outcome) {
      m.respond(outcome.data);
      return;
    }
    const h = headers();
    h.set(ERROR_HEADER, outcome.error);
    m.respond(EMPTY, { headers: h });
  }

  #strip(subject: string): string {
    return this.#prefix && subject.startsWith(this.#prefix) ? subject.slice(this.#prefix.length) : subject;
  }

  #endAll(): void {
    for (const sub of [...this.#live]) sub.unsubscribe();
  }

  #assertOpen(): void {
    if (this.#closing) throw busClosed();
  }
}
