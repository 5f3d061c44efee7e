const SECRETS = new Set(['secrets.yaml', 'secrets.yml']);

/**
 * Device files are visible .yaml/.yml files other than secrets; subdirectories are checked by the
 * caller. Where their builds live is the build tree's (`resolveBuildPaths` in @kiln/core).
 */
export function isDeviceFileName(file: string): boolean {
  return /\.ya?ml$/.test(file) && !file.startsWith('.') && !SECRETS.has(file);
}
