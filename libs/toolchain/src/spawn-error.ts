import { KilnError } from '@kiln/core';

const INSTALL_HINT = 'install ESPHome (pip install esphome) or set firmware.toolchain';

/**
 * Why the toolchain could not start, as an error a user can act on. `badCwd` is set when the
 * working directory is the culprit: spawn reports that as ENOENT too, and blaming the toolchain
 * would send the user the wrong way.
 */
export function spawnError(command: string, code: string | undefined, message: string, badCwd?: string): KilnError {
  if (badCwd !== undefined) {
    return new KilnError('failed_precondition', `toolchain working directory is missing or not a directory: ${badCwd}`, { command, cwd: badCwd });
  }
  if (code === 'ENOENT') {
    const where = /[\\/]/.test(command) ? 'does not exist' : 'is not on PATH';
    return new KilnError('failed_precondition', `esphome toolchain not found: '${command}' ${where} — ${INSTALL_HINT}`, { command });
  }
  if (code === 'EACCES') {
    return new KilnError('failed_precondition', `esphome toolchain '${command}' is not executable (EACCES) — check its permissions or ${INSTALL_HINT}`, {
      command,
    });
  }
  return new KilnError('internal_error', `esphome toolchain '${command}' could not be started: ${message}`, { command, code });
}
