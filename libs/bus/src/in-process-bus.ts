import { deferred } from '@kiln/core';
import { checkData, checkFunction, checkQueue, resolveTimeout } from './args.js';
import { decodeError } from './error-wire.js';
import { busClosed, noResponders, requestAborted, requestTimedOut } from './errors.js';
import { safeReporter } from './handler-errors.js';
import { serve, type Replier } from './responder.js';
import { validateSubject } from './subject.js';
import { SubscriptionIndex, type IndexEntry } from './subscription-index.js';
import { Subscription } from './subscription.js';
import type { Bus, BusMessage, BusOptions, BusSubscription, HandlerErrorReporter, MessageHandler, Responder, SubscribeOptions } from './types.js';

/**
 * One subscription's place in the index plus its delivery queue. Delivery is deferred to a microtask
 * so publishers never run subscriber code (as with NATS); one queue per subscription keeps publish
 * order, and one microtask per burst, not per message, keeps log-line traffic cheap.
 */
class LocalEntry implements IndexEntry {
  readonly #pending: BusMessage[] = [];
  #head = 0;
  #scheduled = false;

  constructor(
    readonly pattern: string,
    readonly queue: string | undefined,
    readonly sub: Subscription,
  ) {}

  enqueue(msg: BusMessage): void {
    this.#pending.push(msg);
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(this.#run);
    }
  }

  readonly #run = (): void => {
    this.#scheduled = false;
    this.flush();
  };

  /**
   * Deliver everything queued, including what handlers publish to this subscription meanwhile. Once
   * unsubscribed, `deliver` ignores the rest, as NATS drops messages still in flight.
   */
  flush(): void {
    const pending = this.#pending;
    while (this.#head < pending.length) this.sub.deliver(pending[this.#head++]!);
    pending.length = 0;
    this.#head = 0;
  }
}

const enqueue = (entry: LocalEntry, msg: BusMessage): void => entry.enqueue(msg);

class InProcessBus implements Bus {
  readonly kind = 'in-process' as const;
  readonly #index = new SubscriptionIndex<LocalEntry>();
  readonly #live = new Set<LocalEntry>();
  /** Reply routes for request messages only; plain publishes never touch this. */
  readonly #replies = new WeakMap<BusMessage, Replier>();
  readonly #pendingRequests = new Set<() => void>();
  readonly #report: HandlerErrorReporter;
  #closed = false;

  constructor(options: BusOptions) {
    this.#report = safeReporter(options.onHandlerError);
  }

  publish(subject: string, data?: Uint8Array): void {
    this.#assertOpen();
    validateSubject(subject, { wildcards: false });
    this.#index.route(subject, { subject, data: checkData(data) }, enqueue);
  }

  subscribe(subject: string, handler?: MessageHandler, options?: SubscribeOptions): BusSubscription {
    this.#assertOpen();
    validateSubject(subject, { wildcards: true });
    checkFunction('handler', handler, true);
    checkQueue(options?.queue);
    return this.#attach(subject, handler, options?.queue);
  }

  respond(subject: string, responder: Responder, options?: SubscribeOptions): BusSubscription {
    this.#assertOpen();
    validateSubject(subject, { wildcards: true });
    checkFunction('responder', responder, false);
    checkQueue(options?.queue);
    return this.#attach(subject, (msg) => void serve(responder, msg, this.#replies.get(msg), this.#report), options?.queue);
  }

  async request(subject: string, data?: Uint8Array, options?: { timeoutMs?: number }): Promise<BusMessage> {
    this.#assertOpen();
    validateSubject(subject, { wildcards: false });
    const msg: BusMessage = { subject, data: checkData(data) };
    const timeoutMs = resolveTimeout(options?.timeoutMs);

    const reply = deferred<BusMessage>();
    let settled = false;
    // The first of reply, timeout or close wins; the others find the request settled.
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      this.#pendingRequests.delete(abort);
      return true;
    };
    const abort = (): void => {
      if (settle()) reply.reject(requestAborted(subject));
    };
    this.#replies.set(msg, (outcome) => {
      if (!settle()) return;
      if ('data' in outcome) reply.resolve({ subject, data: outcome.data });
      else reply.reject(decodeError(outcome.error, subject));
    });
    // Delivery is deferred, so nothing can answer before the timer below exists.
    if (this.#index.route(subject, msg, enqueue) === 0) throw noResponders(subject);
    const timer = setTimeout(() => {
      if (settle()) reply.reject(requestTimedOut(subject, timeoutMs));
    }, timeoutMs);
    this.#pendingRequests.add(abort);
    return reply.promise;
  }

  subscriptionCount(): number {
    return this.#live.size;
  }

  async flush(): Promise<void> {
    this.#assertOpen();
    // Deliveries run as microtasks; a macrotask turn lets all of them (and any they cause) finish.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Like a NATS drain: what was published before close still reaches its subscribers.
    for (const entry of this.#live) entry.flush();
    for (const entry of [...this.#live]) entry.sub.unsubscribe();
    for (const abort of [...this.#pendingRequests]) abort();
  }

  #attach(subject: string, handler: MessageHandler | undefined, queue: string | undefined): BusSubscription {
    const sub = new Subscription(subject, handler, {
      report: this.#report,
      detach: () => {
        this.#index.remove(entry);
        this.#live.delete(entry);
      },
    });
    const entry = new LocalEntry(subject, queue, sub);
    this.#index.add(entry);
    this.#live.add(entry);
    return sub;
  }

  #assertOpen(): void {
    if (this.#closed) throw busClosed();
  }
}

/** A bus inside one process: same subjects, semantics and errors as the NATS bus, no network. */
export function createInProcessBus(options: BusOptions = {}): Bus {
  return new InProcessBus(options);
}
