import { deferred, type Deferred } from '@kiln/core';
import type { EligibleReceiver, ExecutorExit, ExecutorRequest, PairedReceiver, ReceiverPool } from '../src/index.js';

/** One compile the scheduler placed on a scripted receiver; the test settles it through `exit`. */
export interface ScriptedCall {
  receiverId: string;
  jobId: string;
  configuration: string;
  signal: AbortSignal;
  exit: Deferred<ExecutorExit>;
}

/**
 * A receiver pool without gRPC for scheduler tests (the transport is covered end to end in
 * apps/kiln and libs/gateway): every compile placed on it is recorded and waits for the test, an
 * abort ends it cancelled. Subclasses say which receivers exist.
 */
export abstract class ScriptedPoolBase implements ReceiverPool {
  readonly calls: ScriptedCall[] = [];
  /** Resolved: every receiver has had its first connection attempt (a test may hold it back). */
  settling: Deferred<void> | undefined;
  private listener: () => void = () => undefined;

  abstract eligible(): EligibleReceiver[];
  abstract byPin(pin: string): PairedReceiver | undefined;

  settled(): Promise<void> {
    return this.settling?.promise ?? Promise.resolve();
  }
  onChange(listener: () => void): void {
    this.listener = listener;
  }
  /** Tell the scheduler the receivers changed. */
  changed(): void {
    this.listener();
  }
  compile(receiverId: string, request: ExecutorRequest, out: (lines: string[]) => Promise<void>, signal: AbortSignal): Promise<ExecutorExit> {
    const call: ScriptedCall = { receiverId, jobId: request.jobId, configuration: request.configuration, signal, exit: deferred<ExecutorExit>() };
    this.calls.push(call);
    signal.addEventListener('abort', () => call.exit.resolve({ exitCode: null, signal: 'SIGTERM' }), { once: true });
    void out([`remote output from ${receiverId}`]);
    return call.exit.promise;
  }
  async reload(): Promise<void> {}
  async stop(): Promise<void> {}
  detail(): Record<string, string> {
    return {};
  }
}
