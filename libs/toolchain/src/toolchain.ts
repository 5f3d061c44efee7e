import { resolve } from 'node:path';
import { KilnError } from '@kiln/core';
import { actionArgs } from './args.js';
import { wrapSubprocess } from './process.js';
import type { ToolchainAction, ToolchainOptions, ToolchainProcess, ToolchainRunOptions } from './types.js';

/**
 * execa and its dependencies (~110 modules, several MB of an idle process) load with the first
 * toolchain run: a firmware service that has not compiled anything yet does not hold them.
 */
let processRunner: Promise<typeof import('execa')> | undefined;

export const DEFAULT_TOOLCHAIN_COMMAND: readonly string[] = ['esphome'];
export const DEFAULT_KILL_GRACE_MS = 5000;

/** Runs the esphome CLI (or anything with the same argv contract, like the simulator). */
export class Toolchain {
  private readonly command: readonly string[];
  private readonly killGraceMs: number;
  private readonly env: Record<string, string>;

  constructor(options: ToolchainOptions) {
    const command = options.command.length === 0 ? DEFAULT_TOOLCHAIN_COMMAND : options.command;
    if (command.some((part) => typeof part !== 'string' || part === '')) {
      throw new KilnError('invalid_args', 'toolchain command: every argv element must be a non-empty string', { command });
    }
    const grace = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
    if (!Number.isFinite(grace) || grace < 0) {
      throw new KilnError('invalid_args', `killGraceMs: must be a non-negative number (got ${grace})`, { killGraceMs: grace });
    }
    this.command = [...command];
    this.killGraceMs = grace;
    this.env = { ...options.env };
  }

  /** Start the toolchain; rejects (nothing started) on invalid arguments. */
  async run(action: ToolchainAction, configPath: string, opts: ToolchainRunOptions): Promise<ToolchainProcess> {
    const args = actionArgs(action, configPath);
    if (typeof opts.dataDir !== 'string' || opts.dataDir === '') {
      throw new KilnError('invalid_args', 'dataDir: required', { dataDir: opts.dataDir });
    }
    const [file = 'esphome', ...prefix] = this.command;
    const { execa } = await (processRunner ??= import('execa'));
    const subprocess = execa(file, [...prefix, ...args], {
      cwd: opts.cwd,
      env: {
        // esphome is Python: unbuffered, or piped output arrives in 4 KiB bursts instead of lines.
        PYTHONUNBUFFERED: '1',
        ...this.env,
        ESPHOME_DATA_DIR: resolve(opts.dataDir),
      },
      stdin: 'ignore',
      all: true,
      buffer: false,
      reject: false,
      // Own process group, so a signal to -pid also reaches gcc/esptool grandchildren.
      detached: true,
      stripFinalNewline: false,
    });
    return wrapSubprocess(subprocess, file, this.killGraceMs, opts.cwd);
  }
}
