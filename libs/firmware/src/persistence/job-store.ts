import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { firmwarePb as pb } from '@kiln/contracts';
import { readTextIfExists, writeFileAtomic } from '@kiln/core';
import type { Logger } from '@kiln/logging';
import type { Job } from '../jobs/job.js';

const FORMAT_VERSION = 1;

/**
 * Job metadata on disk (`<data_dir>/firmware/jobs.json`), written atomically. Output is not here:
 * it lives in the log store. Saves are serialised and coalesced: a caller that awaits save() knows
 * the state as of its call is on disk before it announces anything.
 */
export class JobStore {
  readonly path: string;
  private writing: Promise<void> = Promise.resolve();
  private pending: Promise<void> | undefined;

  constructor(
    dataDir: string,
    private readonly snapshot: () => Job[],
    private readonly logger: Logger,
  ) {
    this.path = join(dataDir, 'firmware', 'jobs.json');
  }

  save(): Promise<void> {
    // One write in flight and at most one queued behind it: the queued one writes the latest state.
    this.pending ??= this.writing.then(() => {
      this.pending = undefined;
      const text = `${JSON.stringify({ version: FORMAT_VERSION, jobs: this.snapshot() })}\n`;
      return writeFileAtomic(this.path, text);
    });
    this.writing = this.pending.catch((err: unknown) => this.logger.error({ err }, 'persisting jobs failed'));
    return this.pending;
  }

  /** Jobs as last saved. A file that cannot be read as jobs is moved aside (kept for inspection), never overwritten. */
  async load(): Promise<Job[]> {
    const text = await readTextIfExists(this.path);
    if (text === undefined) return [];
    try {
      const parsed = JSON.parse(text) as { version?: unknown; jobs?: unknown };
      if (parsed.version !== FORMAT_VERSION || !Array.isArray(parsed.jobs)) throw new Error(`unsupported format version ${String(parsed.version)}`);
      return parsed.jobs.map((raw, i) => validJob(raw, i));
    } catch (err) {
      const aside = `${this.path}.unreadable-${Date.now()}`;
      await rename(this.path, aside);
      this.logger.error({ err, movedTo: aside }, 'job history unreadable; moved aside and starting empty');
      return [];
    }
  }
}

function validJob(raw: unknown, index: number): Job {
  const r = raw as Partial<Record<keyof Job, unknown>>;
  const str = (k: keyof Job) => {
    if (typeof r[k] !== 'string') throw new Error(`job ${index}: ${k} must be a string`);
    return r[k] as string;
  };
  const num = (k: keyof Job) => {
    if (typeof r[k] !== 'number' || !Number.isFinite(r[k])) throw new Error(`job ${index}: ${k} must be a number`);
    return r[k] as number;
  };
  const en = <E extends number>(k: keyof Job, values: object) => {
    const n = num(k);
    if (!Object.values(values).includes(n)) throw new Error(`job ${index}: ${k} ${n} is not a known value`);
    return n as E;
  };
  return {
    id: str('id'),
    configuration: str('configuration'),
    type: en<pb.JobType>('type', pb.JobType),
    status: en<pb.JobStatus>('status', pb.JobStatus),
    createdAtMs: num('createdAtMs'),
    startedAtMs: num('startedAtMs'),
    finishedAtMs: num('finishedAtMs'),
    ...(typeof r.exitCode === 'number' ? { exitCode: r.exitCode } : {}),
    error: str('error'),
    port: str('port'),
    dependsOn: str('dependsOn'),
    source: en<pb.JobSource>('source', pb.JobSource),
    progress: num('progress'),
    newName: str('newName'),
    lane: en<pb.LaneName>('lane', pb.LaneName),
    held: r.held === true,
    // Histories written before manual sends have no pin: the job was not sent to a receiver.
    receiverPin: typeof r.receiverPin === 'string' ? r.receiverPin : '',
  };
}
