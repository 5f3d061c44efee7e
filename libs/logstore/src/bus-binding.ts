import type { Bus } from '@kiln/bus';
import { encode, logStorePb as pb, logStoreSubjects, serveBus } from '@kiln/contracts';
import type { CommittedBatch } from './job-log.js';
import type { LogStore, LogStoreEvents } from './log-store.js';

/** NATS caps a message at 1 MiB by default; replies and events stay well under it. */
export const MAX_BUS_PAYLOAD_BYTES = 512 * 1024;

/** Put the store's methods on the bus: the unary methods of LogStoreService (logstore.proto). */
export function serveLogStoreOnBus(bus: Bus, store: LogStore): Disposable[] {
  return serveBus(bus, pb.LogStoreServiceDefinition, {
    append: (req) => store.append(req.jobId, req.lines),
    closeLog: (req) => store.close(req.jobId),
    read: (req) => store.read(req.jobId, req, MAX_BUS_PAYLOAD_BYTES),
    delete: async (req) => ({ deleted: await store.delete(req.jobId) }),
    list: async () => ({ logs: await store.list() }),
  });
}

/** Announce committed lines, closes and deletes as bus events, split to stay under the payload cap. */
export function busEventsFor(bus: Bus): LogStoreEvents {
  return {
    committed(jobId: string, batch: CommittedBatch) {
      for (const part of splitBatch(batch, MAX_BUS_PAYLOAD_BYTES)) {
        bus.publish(logStoreSubjects.lines(jobId), encode(pb.LinesAppended, { jobId, ...part }));
      }
    },
    closed(jobId: string, lineCount: number) {
      bus.publish(logStoreSubjects.closed(jobId), encode(pb.LogClosed, { jobId, lineCount }));
    },
    deleted(jobId: string) {
      bus.publish(logStoreSubjects.deleted(jobId), encode(pb.LogDeleted, { jobId }));
    },
  };
}

export function* splitBatch(batch: CommittedBatch, maxBytes: number): Generator<CommittedBatch> {
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < batch.lines.length; i++) {
    const size = Buffer.byteLength(batch.lines[i]!) + 4;
    if (bytes + size > maxBytes && i > start) {
      yield { firstSeq: batch.firstSeq + start, lines: batch.lines.slice(start, i) };
      start = i;
      bytes = 0;
    }
    bytes += size;
  }
  if (start < batch.lines.length || batch.lines.length === 0) {
    yield start === 0 ? batch : { firstSeq: batch.firstSeq + start, lines: batch.lines.slice(start) };
  }
}
