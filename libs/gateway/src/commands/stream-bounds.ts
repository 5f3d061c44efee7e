import type { DropNotice, StreamOptions } from '@kiln/streams';
import type { CommandContext, Session, StreamItem } from './types.js';

type OutputData = { job_id: string; lines: string[] };

const isOutput = (item: StreamItem): item is { event: 'job_output'; data: OutputData } => 'event' in item && item.event === 'job_output';

/** Roughly what a frame costs queued and on the wire: an output batch by its lines (the bulk of every byte), anything else as JSON. */
export function frameBytes(item: StreamItem): number {
  if (!isOutput(item)) return JSON.stringify(item).length;
  let bytes = 64;
  for (const line of item.data.lines) bytes += line.length + 3;
  return bytes;
}

/**
 * The bounds every stream of one client queues under: `gateway.streamCapacity` events and
 * `gateway.streamMaxBytes` bytes, the bytes counting what the client's socket still holds, so a
 * client that stops reading has its output dropped instead of buffered in the gateway.
 */
export function streamBounds<T extends StreamItem>(ctx: CommandContext, session: Session): Pick<StreamOptions<T>, 'capacity' | 'bytes'> {
  return { capacity: ctx.streamCapacity, bytes: { max: ctx.streamMaxBytes, sizeOf: frameBytes, downstream: session.bufferedBytes } };
}

/** Output a slow client missed becomes `job_output_dropped {job_id, dropped_lines}`, one per job, where it was lost. */
export function outputDropNotice<T extends StreamItem>(): DropNotice<T> {
  return {
    tally: (item) => (isOutput(item) ? { key: item.data.job_id, count: item.data.lines.length } : undefined),
    notice: (jobId, count) => ({ event: 'job_output_dropped', data: { job_id: jobId, dropped_lines: count } }) as T,
  };
}
