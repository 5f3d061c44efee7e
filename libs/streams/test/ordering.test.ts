import { EventEmitter } from 'node:events';
import { deferred, disposable } from '@kiln/core';
import { describe, expect, it } from 'vitest';
import { streamEvents, type StreamControls } from '../src/index.js';
import { consume, controlled, FakeSource, flush, viaPush } from './support.js';

describe('ordering', () => {
  it('history strictly precedes live when events fire during the snapshot', async () => {
    const source = new FakeSource<string>();
    const stream = streamEvents<string>({ attach: source.attachWith(viaPush), snapshot: () => ['h1', 'h2', 'h3'] });
    const read = async (): Promise<string | undefined> => (await stream.next()).value;

    source.emit('l1'); // before anything is read
    const got = [await read()];
    source.emit('l2', 'l3'); // between history items
    got.push(await read(), await read());
    source.emit('l4'); // after the last history item was read, before the first live read
    got.push(await read(), await read(), await read(), await read());

    expect(got).toEqual(['h1', 'h2', 'h3', 'l1', 'l2', 'l3', 'l4']);
  });

  it('concurrent next() calls are served one at a time, in order', async () => {
    const { stream, controls } = controlled<string>({
      snapshot: async function* () {
        yield 'h1';
        yield 'h2';
      },
    });
    controls.push('l1');
    controls.end();
    const reads = [stream.next(), stream.next(), stream.next(), stream.next()];
    expect(await Promise.all(reads)).toEqual([
      { done: false, value: 'h1' },
      { done: false, value: 'h2' },
      { done: false, value: 'l1' },
      { done: true, value: undefined },
    ]);
  });

  describe('events pushed while an async snapshot is parked mid-iteration', () => {
    /** A running job: its log so far plus a feed of appended lines. */
    class Job {
      readonly lines = ['a', 'b', 'c'];
      readonly feed = new EventEmitter();
      /** Holds the snapshot between its first and second line. */
      readonly gate = deferred();

      append(line: string): void {
        this.lines.push(line);
        this.feed.emit('line', line);
      }

      attach = (controls: StreamControls<string>): Disposable => {
        this.feed.on('line', controls.push);
        return disposable(() => this.feed.off('line', controls.push));
      };

      /** Frozen when called (as the contract asks); parks on the gate after the first line. */
      history = (): AsyncIterable<string> => {
        const frozen = [...this.lines];
        const gate = this.gate.promise;
        return (async function* () {
          for (const [i, line] of frozen.entries()) {
            if (i === 1) await gate;
            yield line;
          }
        })();
      };
    }

    type Follow = (job: Job) => AsyncIterable<string>;

    /** Deterministic race: d and e are appended exactly while the snapshot is parked after 'a'. */
    async function race(follow: Follow): Promise<{ whileParked: string[]; final: string[] }> {
      const job = new Job();
      const consumer = consume(follow(job));
      await flush();
      expect(consumer.received).toEqual(['a']); // parked inside the snapshot

      job.append('d');
      job.append('e');
      await flush();
      const whileParked = [...consumer.received];

      job.gate.resolve();
      await flush();
      job.append('f');
      job.feed.emit('end');
      await flush();
      await consumer.finished;
      return { whileParked, final: consumer.received };
    }

    const ending = (job: Job, controls: StreamControls<string>): Disposable => {
      const live = job.attach(controls);
      job.feed.once('end', controls.end);
      return live;
    };

    const viaStreamEvents: Follow = (job) => streamEvents({ attach: (c) => ending(job, c), snapshot: job.history });

    // The upstream bug this helper replaced: subscribe only once history has been sent.
    const subscribeAfterHistory: Follow = (job) =>
      (async function* () {
        yield* job.history();
        yield* streamEvents<string>({ attach: (c) => ending(job, c) });
      })();

    // The other upstream shape: live events fan out as they fire, racing the history send.
    const deliverLiveImmediately: Follow = (job) =>
      streamEvents<string>({
        attach: (c) => {
          void (async () => {
            for await (const line of job.history()) c.push(line);
          })();
          return ending(job, c);
        },
      });

    it('live events pushed while an async snapshot is parked arrive after the whole snapshot, in order', async () => {
      expect(await race(viaStreamEvents)).toEqual({ whileParked: ['a'], final: ['a', 'b', 'c', 'd', 'e', 'f'] });
    });

    it('the race scenario catches both naive implementations', async () => {
      expect((await race(subscribeAfterHistory)).final).toEqual(['a', 'b', 'c', 'f']); // d and e lost
      expect(await race(deliverLiveImmediately)).toEqual({ whileParked: ['a', 'd', 'e'], final: ['a', 'd', 'e', 'b', 'c', 'f'] });
    });
  });
});
