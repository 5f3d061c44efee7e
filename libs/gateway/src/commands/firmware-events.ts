import { listening, type Bus, type BusMessage } from '@kiln/bus';
import { firmwarePb as pb, firmwareSubjects, FIRMWARE_EVENTS, type FirmwareEventName } from '@kiln/contracts';

export type FirmwareEvent =
  | { kind: 'lifecycle'; name: FirmwareEventName; job: pb.Job }
  | { kind: 'progress'; jobId: string; configuration: string; progress: number }
  | { kind: 'output'; jobId: string; firstSeq: number; lines: string[] }
  | { kind: 'cleared'; jobIds: string[] };

const LIFECYCLE = { queued: pb.JobQueued, started: pb.JobStarted, completed: pb.JobCompleted, failed: pb.JobFailed, cancelled: pb.JobCancelled } as const;

function decode(subject: string, data: Uint8Array): FirmwareEvent | undefined {
  const name = subject.slice(subject.lastIndexOf('.') + 1) as FirmwareEventName;
  if (name in LIFECYCLE) {
    const job = LIFECYCLE[name as keyof typeof LIFECYCLE].decode(data).job;
    return job ? { kind: 'lifecycle', name, job } : undefined;
  }
  if (name === 'progressed') {
    const e = pb.JobProgressed.decode(data);
    return { kind: 'progress', jobId: e.jobId, configuration: e.configuration, progress: e.progress };
  }
  if (name === 'output') {
    const e = pb.JobOutputAppended.decode(data);
    return { kind: 'output', jobId: e.jobId, firstSeq: e.firstSeq, lines: e.lines };
  }
  if (name === 'cleared') return { kind: 'cleared', jobIds: pb.JobsCleared.decode(data).jobIds };
  return undefined;
}

/**
 * The in-process bus hands every subscriber the same message object, so N followers of a flood
 * decode each batch once, not N times, and their queues hold the same line strings rather than N
 * copies of them. Keyed weakly: an entry lives only as long as the message does.
 */
const decoded = new WeakMap<BusMessage, FirmwareEvent | undefined>();

function decodeOnce(msg: BusMessage): FirmwareEvent | undefined {
  if (decoded.has(msg)) return decoded.get(msg);
  const event = decode(msg.subject, msg.data);
  decoded.set(msg, event);
  return event;
}

/**
 * Listen to the firmware service's events (decoded); one place knows the subjects and messages.
 * Listeners of one message share its decoded event: read it, never change it.
 */
export function onFirmwareEvents(bus: Bus, handler: (event: FirmwareEvent) => void, only?: readonly FirmwareEventName[]): Disposable {
  const names = only ?? FIRMWARE_EVENTS;
  return listening(
    bus,
    names.map((n) => firmwareSubjects.event(n)),
    (msg) => {
      const event = decodeOnce(msg);
      if (event) handler(event);
    },
  );
}
