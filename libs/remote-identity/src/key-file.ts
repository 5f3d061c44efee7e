import { stat } from 'node:fs/promises';

/** Where a key file's exposure is reported: a pino logger fits (`warn(details, message)`). */
export interface KeyFileWarner {
  warn(details: Record<string, unknown>, message: string): void;
}

/** Private material: owner-only. */
export const SECRET_FILE_MODE = 0o600;
/** Private material's directory: owner-only too (nobody else lists or replaces what is in it). */
export const SECRET_DIR_MODE = 0o700;

/** Octal as people type it for chmod: `0644`. */
export const formatMode = (mode: number): string => `0${(mode & 0o777).toString(8).padStart(3, '0')}`;

/**
 * Warn (as ssh does) when a secret file is accessible by group or others. A warning, not a refusal:
 * a host whose data dir lost its modes in a restore keeps working while the log says what to fix.
 * Returns the mode found (undefined when the file cannot be stat'ed: the caller's read reports that).
 */
export async function warnIfExposed(file: string, what: string, logger: KeyFileWarner | undefined, knownMode?: number): Promise<number | undefined> {
  const mode = knownMode ?? (await stat(file).then((s) => s.mode, () => undefined));
  if (mode !== undefined && (mode & 0o077) !== 0) {
    logger?.warn({ file, mode: formatMode(mode) }, `${what} ${file} is accessible by group or others (mode ${formatMode(mode)}): it is a secret, run chmod 600 ${file}`);
  }
  return mode;
}
