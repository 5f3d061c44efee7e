import { connectNatsBus } from '../nats.js';
import type { Bus } from '../types.js';

/** The NATS server tests use (`NATS_TEST_URL`, else the local one). */
export const NATS_TEST_URL = process.env['NATS_TEST_URL'] ?? 'nats://127.0.0.1:4222';

/** A subject namespace of one test run's own: other runs may serve the same subjects on the server. */
export function testNatsPrefix(tag = 't'): string {
  return `${tag}${process.pid}x${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * A bus on the test NATS server, or undefined when none is running so the test can skip — except
 * under CI=true, where a missing server fails the test instead.
 */
export async function natsOrSkip(prefix: string): Promise<Bus | undefined> {
  try {
    return await connectNatsBus({ servers: NATS_TEST_URL, timeoutMs: 2_000, prefix });
  } catch (err) {
    if (process.env['CI'] === 'true') throw err;
    return undefined;
  }
}
