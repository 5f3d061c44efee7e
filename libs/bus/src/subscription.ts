import { AsyncResource } from 'node:async_hooks';
import { deferred, KilnError, type Deferred } from '@kiln/core';
import { invokeHandler } from './handler-errors.js';
import type { BusMessage, BusSubscription, HandlerErrorReporter, MessageHandler } from './types.js';

export interface SubscriptionHooks {
  /** Stop the transport feeding this subscription (index removal, NATS UNSUB); called once. */
  detach(): void;
  report: HandlerErrorReporter;
}

/** Compact the iterator buffer only past this many consumed entries, so a steady consumer never copies. */
const COMPACT_AFTER = 1024;

/**
 * The subscription both buses hand out, so handler dispatch, iteration and ending behave the same
 * whatever the transport. A transport calls `deliver` for each message, in order.
 */
export class Subscription implements BusSubscription {
  readonly #handler: MessageHandler | undefined;
  readonly #hooks: SubscriptionHooks;
  /**
   * The subscriber's async context. Handlers run in it rather than in the publisher's, so a host that
   * attributes failures by async context (the supervisor) charges a throwing handler to the service
   * that subscribed, not to whichever service published.
   */
  readonly #scope = new AsyncResource('kiln.bus.subscription');
  #closed = false;
  // Iterator mode only: messages not yet taken by the consumer, read from #head on.
  #buffer: BusMessage[] = [];
  #head = 0;
  #wake: Deferred<void> | undefined;
  #iterated = false;

  constructor(
    readonly subject: string,
    handler: MessageHandler | undefined,
    hooks: SubscriptionHooks,
  ) {
    this.#handler = handler;
    this.#hooks = hooks;
  }

  get closed(): boolean {
    return this.#closed;
  }

  deliver(msg: BusMessage): void {
    if (this.#closed) return;
    const handler = this.#handler;
    if (handler) {
      this.#scope.runInAsyncScope(invokeHandler, undefined, handler, msg, this.#hooks.report);
      return;
    }
    this.#buffer.push(msg);
    this.#signal();
  }

  unsubscribe(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#hooks.detach();
    } finally {
      this.#signal();
    }
  }

  [Symbol.dispose](): void {
    this.unsubscribe();
  }

  [Symbol.asyncIterator](): AsyncIterator<BusMessage> {
    if (this.#handler) {
      throw new KilnError('failed_precondition', `subscription to ${this.subject} has a handler; it cannot also be iterated`, {
        subject: this.subject,
      });
    }
    // One consumer, as in NATS: two loops splitting one stream would each see a random half.
    if (this.#iterated) {
      throw new KilnError('failed_precondition', `subscription to ${this.subject} is already being iterated`, { subject: this.subject });
    }
    this.#iterated = true;
    return {
      next: () => this.#next(),
      return: async () => {
        this.unsubscribe();
        return { done: true, value: undefined };
      },
    };
  }

  async #next(): Promise<IteratorResult<BusMessage>> {
    for (;;) {
      if (this.#head < this.#buffer.length) return { done: false, value: this.#take() };
      // Ends only after what already arrived was yielded, like a NATS iterator.
      if (this.#closed) return { done: true, value: undefined };
      this.#wake ??= deferred();
      await this.#wake.promise;
    }
  }

  #take(): BusMessage {
    const msg = this.#buffer[this.#head++]!;
    if (this.#head === this.#buffer.length) {
      this.#buffer.length = 0;
      this.#head = 0;
    } else if (this.#head >= COMPACT_AFTER) {
      this.#buffer = this.#buffer.slice(this.#head);
      this.#head = 0;
    }
    return msg;
  }

  #signal(): void {
    const wake = this.#wake;
    if (wake) {
      this.#wake = undefined;
      wake.resolve();
    }
  }
}
