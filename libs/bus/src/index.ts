export type {
  Bus,
  BusMessage,
  BusOptions,
  BusSubscription,
  HandlerErrorReporter,
  MessageHandler,
  RequestOptions,
  Responder,
  SubscribeOptions,
} from './types.js';
export { DEFAULT_REQUEST_TIMEOUT_MS } from './types.js';
export { validateSubject, subjectMatches } from './subject.js';
export { createInProcessBus } from './in-process-bus.js';
export { connectNatsBus, type NatsBusOptions } from './nats.js';
export { listening } from './listening.js';
export { ERROR_HEADER } from './error-wire.js';
