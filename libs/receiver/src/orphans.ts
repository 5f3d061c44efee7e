import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@kiln/core';
import type { Logger } from '@kiln/logging';
import { groupAlive, signalGroup, waitGroupGone } from '@kiln/toolchain';

/** How long a leftover group gets to die after SIGKILL before the receiver starts anyway. */
const REAP_WAIT_MS = 5_000;

/**
 * One marker file per running compile (`<dir>/<build_id>.json`: its process group and build dir),
 * removed when it exits. A receiver that was killed leaves markers behind; at the next start their
 * process trees are killed before any build runs, so an orphaned compile never writes into a build
 * dir a new build of the same device is using.
 */
export class RunningMarkers {
  constructor(private readonly dir: string, private readonly logger: Logger) {}

  mark(buildId: string, pgid: number, dataDir: string): Promise<void> {
    return writeFileAtomic(join(this.dir, `${buildId}.json`), JSON.stringify({ pgid, dataDir }), 0o600);
  }

  clear(buildId: string): Promise<void> {
    return rm(join(this.dir, `${buildId}.json`), { force: true });
  }

  /** Kill what a previous run left running; returns the groups killed. */
  async reap(): Promise<number> {
    let killed = 0;
    for (const file of await readdir(this.dir).catch(() => [] as string[])) {
      const path = join(this.dir, file);
      try {
        const { pgid, dataDir } = JSON.parse(await readFile(path, 'utf8')) as { pgid: unknown; dataDir: unknown };
        if (typeof pgid === 'number' && pgid > 1 && typeof dataDir === 'string' && (await groupAlive(pgid)) && (await isOurs(pgid, dataDir))) {
          signalGroup(pgid, 'SIGKILL');
          await waitGroupGone(pgid, REAP_WAIT_MS);
          killed++;
          this.logger.warn({ pgid, dataDir }, 'killed a compile left running by a previous receiver process');
        }
      } catch (err) {
        this.logger.warn({ err, marker: path }, 'unreadable running-build marker ignored');
      }
      await rm(path, { force: true });
    }
    return killed;
  }
}

/**
 * The group is the compile we started, not a recycled id: Linux never hands out a pid that is still
 * a live group's id, so a living group whose leader is gone is ours; a living leader must be running
 * on our build dir.
 */
async function isOurs(pgid: number, dataDir: string): Promise<boolean> {
  try {
    return (await readFile(`/proc/${pgid}/cmdline`, 'utf8')).includes(dataDir);
  } catch {
    return true;
  }
}
