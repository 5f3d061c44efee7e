import { access, readFile } from 'node:fs/promises';

/**
 * A state file's text, or undefined when it does not exist yet (first start); any other failure
 * (permissions, I/O) is thrown, so a file that exists is never mistaken for a missing one.
 */
export async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Whether something exists at `path` (following links); any failure to look counts as absent. */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
