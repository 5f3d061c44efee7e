import { watch, type FSWatcher } from 'node:fs';

/**
 * fs.watch on one directory, reporting the changed entry name (null when the platform does not
 * say which). An error (the directory vanished) closes the watcher and calls onClosed instead of
 * throwing, so the owner can re-attach later.
 */
export function watchDirectory(dir: string, onChange: (file: string | null) => void, onClosed: () => void): FSWatcher | undefined {
  let watcher: FSWatcher;
  try {
    watcher = watch(dir, { persistent: false }, (_event, file) => onChange(file === null ? null : String(file)));
  } catch {
    return undefined;
  }
  watcher.on('error', () => {
    watcher.close();
    onClosed();
  });
  return watcher;
}
