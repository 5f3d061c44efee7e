import { execFile } from 'node:child_process';

export interface SystemdNotifierOptions {
  env?: NodeJS.ProcessEnv;
  /** The notifier binary (systemd's own). */
  command?: string;
  onError?: (error: Error, message: string) => void;
}

export interface SystemdNotifier extends Disposable {
  /** READY=1 (and MAINPID=this process), once every hosted service runs. */
  ready(status: string): Promise<void>;
  /** STOPPING=1 at the start of a graceful stop. */
  stopping(): Promise<void>;
  /** Watchdog period in ms, when systemd asked for pings (WatchdogSec=). */
  readonly watchdogMs: number | undefined;
}

/** A notifier call must not hang a stop: systemd answers at once, a stuck one is reported and left. */
const NOTIFY_TIMEOUT_MS = 5_000;

/**
 * systemd readiness and watchdog (`Type=notify`, `NotifyAccess=all`). Node has no AF_UNIX datagram
 * sockets, so Kiln runs systemd's `systemd-notify` binary. Since systemd 246 it waits until the
 * manager has processed the message (a barrier; `--no-block` turns that off), so the message comes
 * from a live process in the unit's cgroup and is attributed to the unit — no PID-attribution race.
 * `--pid` names Kiln itself as MAINPID. Watchdog pings go out every WATCHDOG_USEC/2 from a timer on
 * the event loop: a blocked loop stops them and systemd restarts the unit. Without NOTIFY_SOCKET
 * (not under systemd) this returns undefined and costs nothing.
 */
export function startSystemdNotifier(options: SystemdNotifierOptions = {}): SystemdNotifier | undefined {
  const env = options.env ?? process.env;
  if (!env.NOTIFY_SOCKET) return undefined;
  const command = options.command ?? 'systemd-notify';
  const send = (args: string[]): Promise<void> =>
    new Promise((resolve) => {
      execFile(command, args, { env, timeout: NOTIFY_TIMEOUT_MS }, (error) => {
        if (error) options.onError?.(error, args.join(' '));
        resolve();
      });
    });
  const watchdogUsec = Number(env.WATCHDOG_USEC);
  // WATCHDOG_PID names the process systemd expects pings from; another process (a child) must not ping.
  const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === process.pid;
  const watchdogMs = Number.isFinite(watchdogUsec) && watchdogUsec > 0 && forUs ? Math.max(1, Math.floor(watchdogUsec / 2000)) : undefined;
  let pinging = false;
  const timer =
    watchdogMs === undefined
      ? undefined
      : setInterval(() => {
          if (pinging) return; // a ping still in flight: the next tick tries again
          pinging = true;
          void send(['WATCHDOG=1']).finally(() => (pinging = false));
        }, watchdogMs);
  timer?.unref();
  return {
    watchdogMs,
    ready: (status) => send(['--ready', `--pid=${process.pid}`, `STATUS=${status}`]),
    stopping: () => send(['STOPPING=1']),
    [Symbol.dispose]: () => clearInterval(timer),
  };
}
