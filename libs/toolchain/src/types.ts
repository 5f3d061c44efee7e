import type { KilnError } from '@kiln/core';

export interface ToolchainOptions {
  /** argv prefix of the esphome CLI: ['esphome'] (default, looked up on PATH) or e.g. [SIM_BIN]. */
  command: readonly string[];
  /** SIGTERM → SIGKILL grace for cancellation. Default 5000. */
  killGraceMs?: number;
  /** Extra environment for the child, on top of the inherited one. */
  env?: Record<string, string>;
}

export type ToolchainAction =
  | { kind: 'compile' }
  | { kind: 'upload'; port: string }
  | { kind: 'clean' }
  | { kind: 'config' }
  | { kind: 'run'; port: string }
  | { kind: 'rename'; newName: string };

export interface ToolchainExit {
  exitCode: number | null;
  signal: string | null;
  /** Set when the toolchain could not be started at all (e.g. not installed). */
  error?: KilnError;
}

export interface ToolchainRunOptions {
  /** ESPHOME_DATA_DIR of the child: where storage/, build/ and idedata/ live. */
  dataDir: string;
  cwd?: string;
}

export interface ToolchainProcess {
  readonly pid: number | undefined;
  /**
   * stdout+stderr lines in arrival order (no trailing newline; a '\r'-redrawn progress line yields
   * each redraw). Single consumer, pull-based: while nobody reads, the child blocks on its full pipe.
   * Breaking out early discards the rest of the output instead of blocking the child.
   */
  readonly lines: AsyncIterable<string>;
  /** Resolves when the process and its tree have exited. Never rejects for a non-zero exit. */
  readonly exited: Promise<ToolchainExit>;
  /** Kill the whole process tree: SIGTERM to the group, SIGKILL after killGraceMs. Idempotent. */
  terminate(): Promise<void>;
}
