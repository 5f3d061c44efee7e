import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { ApiError } from '../client.js';
import { socket } from '../session.js';

/**
 * The API emits no remote-build events (subscribe_events carries devices and jobs), so the remote
 * screen re-reads while it is open: a change made elsewhere shows up within this long.
 */
export const POLL_MS = 2_000;

/**
 * Read `command` now and every POLL_MS while `synced`. `settle` shows an action's answer at once and
 * re-reads; an answer older than one already shown is dropped, so a slow poll never undoes an action.
 */
export function usePolled<T>(command: string, synced: boolean) {
  const [value, setValue] = useState<T | undefined>(undefined);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const latest = useRef(0);

  const refresh = useCallback(() => {
    const request = ++latest.current;
    socket.call<T>(command).then(
      (r) => request === latest.current && (setValue(r), setError(undefined)),
      (err: ApiError) => request === latest.current && err.code !== 'disconnected' && setError(err),
    );
  }, [command]);

  const settle = useCallback(
    (answer: T | undefined) => {
      latest.current++;
      if (answer) setValue(answer);
      refresh();
    },
    [refresh],
  );

  useEffect(() => {
    if (!synced) return;
    refresh();
    const timer = setInterval(refresh, POLL_MS);
    return () => clearInterval(timer);
  }, [synced, refresh]);

  return { value, error, settle };
}
