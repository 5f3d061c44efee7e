import { EventEmitter } from 'node:events';
import { streamEvents, type EventStream, type StreamControls, type StreamOptions } from '../src/index.js';

/**
 * A live event source. The handle its attach() returns is deliberately not idempotent, so a stream
 * that released twice shows releases === 2 and one that leaked shows listeners > 0.
 */
export class FakeSource<T> {
  readonly #emitter = new EventEmitter();
  releases = 0;

  get listeners(): number {
    return this.#emitter.listenerCount('item');
  }

  emit(...items: T[]): void {
    for (const item of items) this.#emitter.emit('item', item);
  }

  attachWith(forward: (controls: StreamControls<T>, item: T) => void): (controls: StreamControls<T>) => Disposable {
    return (controls) => {
      const listener = (item: T): void => forward(controls, item);
      this.#emitter.on('item', listener);
      return {
        [Symbol.dispose]: () => {
          this.releases++;
          this.#emitter.off('item', listener);
        },
      };
    };
  }
}

export const viaPush = <T>(controls: StreamControls<T>, item: T): void => {
  controls.push(item);
};

/** Let every queued microtask and promise continuation run, so a consumer reaches where it parks. */
export const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * The consumer shape the library is for: `for await (const item of stream) await send(item)`.
 * `send` may park on a gate so the test can fill the queue while the consumer is busy.
 */
export function consume<T>(
  stream: AsyncIterable<T>,
  send: (item: T) => Promise<void> | void = () => {},
): { received: T[]; finished: Promise<void> } {
  const received: T[] = [];
  const finished = (async () => {
    for await (const item of stream) {
      received.push(item);
      await send(item);
    }
  })();
  return { received, finished };
}

/** A stream whose controls the test drives directly; the listener handle counts its releases. */
export function controlled<T>(options: Omit<StreamOptions<T>, 'attach'> = {}): {
  stream: EventStream<T>;
  controls: StreamControls<T>;
  releases: () => number;
} {
  let controls: StreamControls<T> | undefined;
  let releases = 0;
  const stream = streamEvents<T>({
    ...options,
    attach: (c) => {
      controls = c;
      return { [Symbol.dispose]: () => void releases++ };
    },
  });
  if (!controls) throw new Error('attach was not called synchronously');
  return { stream, controls, releases: () => releases };
}
