import { listening, type Bus, type BusMessage } from '@kiln/bus';
import { disposable, disposeAll } from '@kiln/core';
import { firmwarePb as pb, firmwareSubjects, FIRMWARE_EVENTS, logStorePb, logStoreSubjects, type FirmwareEventName } from '@kiln/contracts';

export type FirmwareEvent =
  | { kind: 'lifecycle'; name: FirmwareEventName; job: pb.Job }
  | { kind: 'progress'; jobId: string; configuration: string; progress: number }
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
  if (name === 'cleared') return { kind: 'cleared', jobIds: pb.JobsCleared.decode(data).jobIds };
  return undefined;
}

/**
 * The in-process bus hands every subscriber the same message object, so N followers of a flood
 * decode each batch once, not N times, and their queues hold the same line strings rather than N
 * copies of them. Keyed weakly: an entry lives only as long as the message does.
 */
function decodeOnce<E>(cache: WeakMap<BusMessage, E>, msg: BusMessage, decode: (msg: BusMessage) => E): E {
  if (cache.has(msg)) return cache.get(msg)!;
  const event = decode(msg);
  cache.set(msg, event);
  return event;
}

const decodedEvents = new WeakMap<BusMessage, FirmwareEvent | undefined>();
const decodedOutput = new WeakMap<BusMessage, JobOutput>();

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
      const event = decodeOnce(decodedEvents, msg, (m) => decode(m.subject, m.data));
      if (event) handler(event);
    },
  );
}

/** A batch of a job's output as the log store committed and announced it (its one publish). */
export interface JobOutput {
  jobId: string;
  firstSeq: number;
  lines: string[];
}

/**
 * Listen to job output at its owner, the log store: one job's (`jobId`) or every job's. Listeners
 * of one message share its decoded batch, as for onFirmwareEvents: read it, never change it.
 */
export function onJobOutput(bus: Bus, handler: (output: JobOutput) => void, jobId?: string): Disposable {
  return listening(bus, [jobId === undefined ? logStoreSubjects.allLines : logStoreSubjects.lines(jobId)], (msg) =>
    handler(decodeOnce(decodedOutput, msg, (m) => logStorePb.LinesAppended.decode(m.data))),
  );
}

/**
 * A job's whole story (every job's without `jobId`): output from the log store, lifecycle and
 * progress from the firmware service, attached together and released together.
 */
export function onJobActivity(bus: Bus, handlers: { output(output: JobOutput): void; event(event: FirmwareEvent): void }, jobId?: string): Disposable {
  const output = onJobOutput(bus, handlers.output, jobId);
  try {
    const events = onFirmwareEvents(bus, handlers.event);
    return disposable(() => disposeAll([events, output]));
  } catch (err) {
    output[Symbol.dispose]();
    throw err;
  }
}
