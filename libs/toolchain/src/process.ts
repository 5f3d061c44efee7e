import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { toKilnError, type KilnError } from '@kiln/core';
import type { ResultPromise } from 'execa';
import { splitLines } from './lines.js';
import { groupAlive, signalGroup, waitGroupGone } from './process-tree.js';
import { spawnError } from './spawn-error.js';
import type { ToolchainExit, ToolchainProcess } from './types.js';

/** After SIGKILL, how long to wait for the tree; only a process stuck in uninterruptible I/O outlives it. */
const AFTER_KILL_MS = 5000;

/**
 * Wrap a detached execa subprocess (its own process group) as a ToolchainProcess.
 * `command` is the executable name used in error messages, `cwd` the child's working directory.
 */
export function wrapSubprocess(subprocess: ResultPromise, command: string, killGraceMs: number, cwd?: string): ToolchainProcess {
  const pid = subprocess.pid;
  const all = subprocess.all as Readable | undefined;
  // With buffer:false execa resumes (and so discards) an unread stream after one tick; pausing
  // it now keeps every line for the consumer and makes reading pull-based.
  all?.pause();

  let treeGone = false;
  let killing: Promise<void> | undefined;
  // One escalation shared by terminate() and by the post-exit sweep of leftover group members.
  const killTree = (): Promise<void> =>
    (killing ??= (async () => {
      if (pid === undefined || treeGone) return;
      signalGroup(pid, 'SIGTERM');
      if (await waitGroupGone(pid, killGraceMs)) return;
      signalGroup(pid, 'SIGKILL');
      await waitGroupGone(pid, AFTER_KILL_MS);
    })());

  const exited = waitForExit(subprocess, command, cwd).then(async (exit) => {
    // The leader is gone; a helper it left behind in the group would hold the serial port or keep
    // the output pipe open, so the tree is swept before the job counts as finished.
    try {
      if (pid !== undefined && (await groupAlive(pid))) await killTree();
    } catch {
      // Signalling failed (EPERM): nothing more we can do; report the leader's exit.
    }
    treeGone = true;
    return exit;
  });

  let terminating: Promise<void> | undefined;
  return {
    pid,
    lines: all === undefined ? emptyLines() : readLines(all),
    exited,
    terminate: () =>
      (terminating ??= (async () => {
        try {
          await killTree();
        } catch {
          // Could not signal the group; still wait for whatever exit happens.
        }
        await exited;
      })()),
  };
}

/**
 * The leader's exit from the 'exit' event, or a spawn failure from the 'error' event (no 'exit'
 * follows one). Both come straight from the child, so neither waits for the output to be read.
 */
function waitForExit(subprocess: ResultPromise, command: string, cwd: string | undefined): Promise<ToolchainExit> {
  const failed = (err: NodeJS.ErrnoException): Promise<ToolchainExit> =>
    describeSpawnError(command, err, cwd).then((error) => ({ exitCode: null, signal: null, error }));
  const onExit = new Promise<ToolchainExit>((resolve) => {
    subprocess.once('exit', (exitCode: number | null, signal: NodeJS.Signals | null) => resolve({ exitCode, signal }));
  });
  const onSpawnError = new Promise<ToolchainExit>((resolve) => {
    subprocess.once('error', (err: NodeJS.ErrnoException) => {
      // Once running, 'error' is about signalling; the exit still arrives through 'exit'.
      if (subprocess.pid === undefined) resolve(failed(err));
    });
  });
  // Backstop for a failure execa reports without a child event. With reject:false it does not
  // reject for a failed command, and it settles only after the output was read.
  const onResult = subprocess.then(
    (result) =>
      result.exitCode !== undefined || result.signal !== undefined || result.code === undefined
        ? onExit
        : failed({ name: 'Error', message: result.shortMessage ?? 'spawn failed', code: result.code }),
    (err: unknown): ToolchainExit => ({ exitCode: null, signal: null, error: toKilnError(err) }),
  );
  return Promise.race([onExit, onSpawnError, onResult]);
}

/** A spawn ENOENT also means "bad cwd"; check which, so the hint points at the real problem. */
async function describeSpawnError(command: string, err: NodeJS.ErrnoException, cwd: string | undefined): Promise<KilnError> {
  const cwdUsable =
    cwd === undefined ||
    (await stat(cwd).then(
      (info) => info.isDirectory(),
      () => false,
    ));
  return spawnError(command, err.code, err.message, cwdUsable ? undefined : cwd);
}

async function* readLines(stream: Readable): AsyncGenerator<string> {
  let finished = false;
  try {
    // destroyOnReturn:false — a consumer that stops early must not close the pipe under the child.
    yield* splitLines(stream.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer | string>);
    finished = true;
  } catch {
    // A read error on the pipe ends the lines; the exit status reports what happened.
    finished = true;
  } finally {
    // Consumer stopped early: drain and discard the rest so the child never blocks on a full pipe.
    if (!finished) stream.resume();
  }
}

async function* emptyLines(): AsyncGenerator<string> {
  // No output stream at all (spawn failed before pipes existed): nothing to yield.
}
