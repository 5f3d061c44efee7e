import { systemPb } from '@kiln/contracts';

export type RunnerState = 'stopped' | 'starting' | 'running' | 'stopping' | 'backoff' | 'held' | 'failed';

/** What the supervisor reports as it works: logged by the host, asserted on by tests. */
export type SupervisorEvent =
  | { type: 'starting'; service: string; run: number }
  | { type: 'started'; service: string; run: number }
  | { type: 'stopped'; service: string; held: boolean }
  | { type: 'stop_timeout'; service: string; timeoutMs: number }
  | { type: 'crashed'; service: string; run: number; error: Error }
  | { type: 'backoff'; service: string; delayMs: number; restarts: number }
  | { type: 'gave_up'; service: string; restartsInWindow: number; error: Error }
  | { type: 'stale_failure'; service: string; run: number; error: Error }
  | { type: 'unattributed_failure'; error: Error }
  | { type: 'ready' };

export function toProtoState(state: RunnerState): systemPb.ServiceState {
  switch (state) {
    case 'stopped':
    case 'failed':
      return systemPb.ServiceState.SERVICE_STATE_STOPPED;
    case 'starting':
      return systemPb.ServiceState.SERVICE_STATE_STARTING;
    case 'running':
      return systemPb.ServiceState.SERVICE_STATE_RUNNING;
    case 'stopping':
      return systemPb.ServiceState.SERVICE_STATE_STOPPING;
    case 'backoff':
      return systemPb.ServiceState.SERVICE_STATE_BACKOFF;
    case 'held':
      return systemPb.ServiceState.SERVICE_STATE_HELD;
  }
}
