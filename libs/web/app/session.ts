import { ApiError, KilnSocket, type StreamHandle } from './client.js';
import { Store, type RemoteSideName } from './state.js';

const TOKEN_KEY = 'kiln.token';

/** The one connection and store of the page, and the actions the views call. */
export const store = new Store();

let events: StreamHandle | undefined;

export const socket = new KilnSocket({
  url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`,
  onState: (connection) => store.set(connection === 'open' ? { connection } : { connection, synced: false }),
  onOpen: () => void resync(),
});

/**
 * A remote-build event for a side that did not answer at the snapshot (it started since): read that
 * side once; the events after it keep it current.
 */
store.onMissingRemote = (side) => void readRemoteSide(side, 0);

/** Read one remote-build side; a timeout (a busy host) is tried again a few times, with a pause. */
async function readRemoteSide(side: RemoteSideName, attempt: number): Promise<void> {
  const command = side === 'receiver' ? 'remote_build/get_identity' : 'remote_build/get_offloader_settings';
  try {
    store.set({ [side]: { value: await socket.call<never>(command), error: undefined } });
  } catch (err) {
    if (err instanceof ApiError && err.code === 'timeout' && attempt < 3) {
      await new Promise((resolve) => setTimeout(resolve, 1000 * (attempt + 1)));
      return readRemoteSide(side, attempt + 1);
    }
  }
}

/** After every (re)connect: log in again if we hold a token, then rebuild state from a fresh snapshot. */
async function resync(): Promise<void> {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) {
    try {
      await socket.call('auth/login', { token });
    } catch (err) {
      if (err instanceof ApiError && err.code === 'disconnected') return;
      sessionStorage.removeItem(TOKEN_KEY);
    }
  }
  subscribe();
}

function subscribe(): void {
  events?.stop();
  events = socket.stream('subscribe_events', {}, {
    event: (name, data) => store.applyEvent(name, data),
    error: (err) => {
      if (err.code === 'not_authenticated') store.set({ needLogin: true });
      // `unavailable` is the fail-closed overflow: the server closes the socket and we resync on reconnect.
      else if (err.code !== 'disconnected' && err.code !== 'unavailable') store.set({ notice: `live updates stopped: ${err.message}` });
    },
  });
}

export async function login(password: string): Promise<void> {
  try {
    const result = await socket.call<{ token?: string }>('auth/login', { password });
    if (result.token) sessionStorage.setItem(TOKEN_KEY, result.token);
    store.set({ needLogin: false, loginError: undefined });
    subscribe();
  } catch (err) {
    store.set({ loginError: err instanceof Error ? err.message : String(err) });
  }
}

/** Run a command for a button; its error becomes the page's notice instead of an unhandled rejection. */
export async function act<T>(command: string, args: Record<string, unknown> = {}): Promise<T | undefined> {
  store.set({ notice: undefined });
  try {
    return await socket.call<T>(command, args);
  } catch (err) {
    store.set({ notice: `${command}: ${err instanceof Error ? err.message : String(err)}` });
    return undefined;
  }
}
