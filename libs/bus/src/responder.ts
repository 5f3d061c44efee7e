import { KilnError } from '@kiln/core';
import { encodeError } from './error-wire.js';
import type { BusMessage, HandlerErrorReporter, Responder } from './types.js';

/** What a responder produced: the reply payload, or its failure encoded for the wire. */
export type ReplyOutcome = { readonly data: Uint8Array } | { readonly error: string };

/** Sends an outcome back to the requester; each bus supplies its own. */
export type Replier = (outcome: ReplyOutcome) => void;

/**
 * Run a responder for one message and answer through `reply`. Without a replier (the message was a
 * plain publish) there is nobody to tell, so a failure is reported like a handler error instead.
 */
export async function serve(responder: Responder, msg: BusMessage, reply: Replier | undefined, report: HandlerErrorReporter): Promise<void> {
  let outcome: ReplyOutcome;
  try {
    const data: unknown = await responder(msg);
    if (!(data instanceof Uint8Array)) {
      throw new KilnError('internal_error', `responder for ${msg.subject} returned no Uint8Array`, { subject: msg.subject });
    }
    outcome = { data };
  } catch (error) {
    if (!reply) return report(error, msg.subject);
    outcome = { error: encodeError(error) };
  }
  if (!reply) return;
  try {
    reply(outcome);
  } catch (error) {
    report(error, msg.subject);
  }
}
