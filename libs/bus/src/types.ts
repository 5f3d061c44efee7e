/** A message as both buses deliver it: the concrete subject it was published on and its payload. */
export interface BusMessage {
  readonly subject: string;
  readonly data: Uint8Array;
}

/** May return a promise; a rejection is reported like a throw (see {@link HandlerErrorReporter}). */
export type MessageHandler = (msg: BusMessage) => void;

export interface SubscribeOptions {
  /** Queue group: each message goes to ONE member of the group (members are grouped by name, as in NATS). */
  queue?: string;
}

/**
 * With a handler, messages go to the handler. Without one, consume it with `for await`: the loop
 * yields what already arrived and then ends once the subscription is unsubscribed or the bus closes.
 * Breaking out of the loop unsubscribes.
 */
export interface BusSubscription extends Disposable, AsyncIterable<BusMessage> {
  readonly subject: string;
  readonly closed: boolean;
  unsubscribe(): void;
}

export type Responder = (msg: BusMessage) => Uint8Array | Promise<Uint8Array>;

export interface RequestOptions {
  /** Default {@link DEFAULT_REQUEST_TIMEOUT_MS}. */
  timeoutMs?: number;
}

export interface Bus {
  readonly kind: 'in-process' | 'nats';
  /** The bus owns `data` from here on: do not mutate it after publishing (the in-process bus does not copy). */
  publish(subject: string, data?: Uint8Array): void;
  subscribe(subject: string, handler?: MessageHandler, options?: SubscribeOptions): BusSubscription;
  /**
   * Serve request/reply. A responder that throws a KilnError makes the requester's request() reject
   * with a KilnError of the same code, message and details (non-Kiln errors → 'internal_error').
   */
  respond(subject: string, responder: Responder, options?: SubscribeOptions): BusSubscription;
  /**
   * Rejects KilnError('timeout', ..., {subject, timeoutMs}) after timeoutMs (default 5000);
   * KilnError('unavailable', ..., {subject}) at once when nobody serves the subject.
   * The reply's `subject` is the request subject on both buses.
   */
  request(subject: string, data?: Uint8Array, options?: RequestOptions): Promise<BusMessage>;
  /** Live subscriptions held through this bus object (leak checks in tests). */
  subscriptionCount(): number;
  /** Resolves once everything published before the call has reached this bus's own subscribers. */
  flush(): Promise<void>;
  /**
   * Delivers what was already published, then ends every subscription; further
   * publish/subscribe/respond throw KilnError('unavailable'), request/flush reject with it.
   */
  close(): Promise<void>;
}

/**
 * Handler-error policy (identical on both buses): a handler that throws (or whose promise rejects),
 * or a responder that fails when nobody awaits its reply, is reported here and delivery carries on
 * for every subscriber, including the failing one. `subject` is the message's subject.
 * Default: written to stderr, because a bus library has no logger and must never crash its host.
 */
export type HandlerErrorReporter = (error: unknown, subject: string) => void;

export interface BusOptions {
  onHandlerError?: HandlerErrorReporter;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;
