import type { BusMessage, HandlerErrorReporter, MessageHandler } from './types.js';

export const reportToStderr: HandlerErrorReporter = (error, subject) => {
  console.error(`@kiln/bus: handler for ${subject} failed:`, error);
};

/** A reporter that cannot throw: a faulty reporter must not break delivery either. */
export function safeReporter(report: HandlerErrorReporter = reportToStderr): HandlerErrorReporter {
  return (error, subject) => {
    try {
      report(error, subject);
    } catch (reportError) {
      reportToStderr(reportError, subject);
    }
  };
}

/** Run a handler so that neither a throw nor a rejected promise escapes into the delivery loop. */
export function invokeHandler(handler: MessageHandler, msg: BusMessage, report: HandlerErrorReporter): void {
  try {
    const result: unknown = handler(msg);
    if (result !== undefined && isThenable(result)) result.then(undefined, (error: unknown) => report(error, msg.subject));
  } catch (error) {
    report(error, msg.subject);
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
