import { KilnError } from '@kiln/core';

/**
 * A state-tracking consumer that missed events cannot repair itself from later ones, so instead of
 * dropping silently the stream fails and the client reconnects and rebuilds from a fresh snapshot.
 */
export class StreamBackpressureError extends KilnError {
  override readonly name: string = 'StreamBackpressureError';

  /** `maxBytes` set: the queue overflowed in bytes, else in events. */
  constructor(capacity: number, maxBytes?: number) {
    super(
      'unavailable',
      maxBytes === undefined
        ? `stream consumer fell behind by more than ${capacity} events and must resync from a fresh snapshot`
        : `stream consumer fell behind by more than ${maxBytes} bytes and must resync from a fresh snapshot`,
      maxBytes === undefined ? { capacity } : { capacity, maxBytes },
    );
  }
}
