import type { NatsBusOptions } from './nats-bus.js';
import type { Bus } from './types.js';

export type { NatsBusOptions } from './nats-bus.js';

/**
 * Connect to NATS. The NATS client is imported here, on first use, so a host on the in-process bus
 * (the embedded default) never pays for it.
 */
export async function connectNatsBus(options: NatsBusOptions): Promise<Bus> {
  const { connectNatsBus: connect } = await import('./nats-bus.js');
  return connect(options);
}
