import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { assertSafeId, writeFileAtomic } from '@kiln/core';
import { groupAlive, signalGroup, waitGroupGone } from './process-tree.js';

/** After SIGKILL, how long to wait for a leftover group; only a process stuck in uninterruptible I/O outlives it. */
const AFTER_KILL_MS = 5000;

/**
 * A process group this host started, identified well enough never to signal a stranger: the group id
 * (the leader's pid, as every toolchain run leads its own group) and the leader's start time
 * (field 22 of /proc/<pid>/stat, clock ticks since boot), which a recycled pid never shares.
 */
export interface GroupRecord {
  pgid: number;
  startTime: string;
}

/** What reaping one recorded group did. `not_ours`: the id now belongs to another process, left alone. */
export type ReapOutcome = 'killed' | 'gone' | 'not_ours' | 'survived';

export interface ReapReport {
  /** The id the group was recorded under (job id, build id). */
  id: string;
  record?: GroupRecord;
  /** `error`: the record could not be read, or the group could not be signalled (see `error`). */
  outcome: ReapOutcome | 'error';
  error?: unknown;
}

interface LeaderStat {
  startTime: string;
  pgrp: number;
}

/** The record of a just-spawned group leader; undefined when it is already gone or there is no /proc to identify it by. */
export async function groupRecordOf(pid: number): Promise<GroupRecord | undefined> {
  const stat = await leaderStat(pid);
  return stat && stat.pgrp === pid ? { pgid: pid, startTime: stat.startTime } : undefined;
}

/**
 * Kill a group a previous process of this host left running: SIGTERM, SIGKILL after `graceMs`. Only
 * when it is provably the recorded one: its leader still has the recorded start time, or the leader
 * is gone while members live on (Linux never hands out a pid that is still a live group's id).
 * Without /proc nothing can be proven, so nothing is killed.
 */
export async function reapGroup(record: GroupRecord, graceMs: number): Promise<ReapOutcome> {
  if (process.platform !== 'linux') return 'not_ours';
  if (!(await groupAlive(record.pgid))) return 'gone';
  const leader = await leaderStat(record.pgid);
  if (leader && (leader.startTime !== record.startTime || leader.pgrp !== record.pgid)) return 'not_ours';
  signalGroup(record.pgid, 'SIGTERM');
  if (await waitGroupGone(record.pgid, graceMs)) return 'killed';
  signalGroup(record.pgid, 'SIGKILL');
  return (await waitGroupGone(record.pgid, AFTER_KILL_MS)) ? 'killed' : 'survived';
}

/**
 * One record file per running toolchain group (`<dir>/<id>.json`), written after the spawn and
 * removed once the group is gone. A host that was killed (kill -9, OOM) leaves them behind; the next
 * start reaps those groups before it runs anything, so an orphaned compile never runs beside (or
 * writes into the build dir of) a new one. The one owner of this for the firmware lanes and the receiver.
 */
export class RunningGroups {
  constructor(readonly dir: string) {}

  /** Record `pid`'s group under `id`. False when there is nothing to record (already gone, no /proc). */
  async add(id: string, pid: number): Promise<boolean> {
    const path = this.pathOf(id);
    const record = await groupRecordOf(pid);
    if (!record) return false;
    await writeFileAtomic(path, JSON.stringify(record), 0o600);
    return true;
  }

  remove(id: string): Promise<void> {
    return rm(this.pathOf(id), { force: true });
  }

  /** Reap every recorded group (see reapGroup) and forget the records. */
  async reap(graceMs: number): Promise<ReapReport[]> {
    const reports: ReapReport[] = [];
    const files = await readdir(this.dir).catch(() => [] as string[]);
    for (const file of files.filter((f) => f.endsWith('.json'))) {
      const id = file.slice(0, -'.json'.length);
      const path = join(this.dir, file);
      let record: GroupRecord | undefined;
      try {
        record = parseRecord(await readFile(path, 'utf8'));
        reports.push({ id, record, outcome: await reapGroup(record, graceMs) });
      } catch (error) {
        reports.push({ id, ...(record ? { record } : {}), outcome: 'error', error });
      }
      await rm(path, { force: true });
    }
    return reports;
  }

  private pathOf(id: string): string {
    return join(this.dir, `${assertSafeId('id', id)}.json`);
  }
}

function parseRecord(text: string): GroupRecord {
  const raw = JSON.parse(text) as { pgid?: unknown; startTime?: unknown };
  if (typeof raw.pgid !== 'number' || !Number.isSafeInteger(raw.pgid) || raw.pgid <= 1) throw new Error(`pgid: not a process group id (got ${JSON.stringify(raw.pgid)})`);
  if (typeof raw.startTime !== 'string' || !/^\d+$/.test(raw.startTime)) throw new Error(`startTime: not a start time (got ${JSON.stringify(raw.startTime)})`);
  return { pgid: raw.pgid, startTime: raw.startTime };
}

/** Start time and process group of `pid` from /proc/<pid>/stat; undefined when it does not exist (or no /proc). */
async function leaderStat(pid: number): Promise<LeaderStat | undefined> {
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime
  // cutime cstime priority nice num_threads itrealvalue starttime ...": comm may hold spaces and ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const startTime = fields[19];
  const pgrp = Number(fields[2]);
  return startTime !== undefined && /^\d+$/.test(startTime) ? { startTime, pgrp } : undefined;
}
