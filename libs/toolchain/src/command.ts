import { isAbsolute, resolve } from 'node:path';

/**
 * The toolchain setting ("esphome", "python3 -m esphome", "tools/esphome-sim/bin/esphome") as argv.
 * A relative program path (one with a slash) is resolved once, at startup, against the directory Kiln
 * was started in: jobs run with the config dir as their working directory, where it would not be found.
 * A bare name is left for PATH lookup.
 */
export function toolchainCommand(setting: string, resolvePath: (path: string) => string = (path) => resolve(path)): string[] {
  const [program, ...args] = setting.trim().split(/\s+/).filter((part) => part !== '');
  if (program === undefined) return [];
  return [program.includes('/') && !isAbsolute(program) ? resolvePath(program) : program, ...args];
}
