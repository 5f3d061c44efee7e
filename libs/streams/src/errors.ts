import { KilnError } from '@kiln/core';

/**
 * A state-tracking consumer that missed events cannot repair itself from later ones, so instead of
 * dropping silently the stream fails and the client reconnects and rebuilds from a fresh snapshot.
 */
export class StreamBackpressureError extends KilnError {
  override readonly name: string = 'StreamBackpressureError';

  constructor(capacity: number) {
    super(
      'unavailable',
      `stream consumer fell behind by more than ${capacity} events and must resync from a fresh snapshot`,
      { capacity },
    );
  }
}
