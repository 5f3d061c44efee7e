import { useEffect, useState } from 'preact/hooks';
import type { ConnectionState } from './client.js';

/** A job as the API shows it (docs/API.md). */
export interface Job {
  id: string;
  configuration: string;
  type: string;
  status: 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
  created_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  exit_code: number | null;
  error: string | null;
  port: string | null;
  depends_on: string | null;
  progress: number;
  lane: 'compile' | 'upload' | null;
  held: boolean;
}

export interface Device {
  configuration: string;
  name: string;
  friendly_name: string;
  platform: string;
  board: string;
  address: string;
  deployed_version: string | null;
  has_build: boolean;
  modified_at: string;
}

export interface AppState {
  connection: ConnectionState;
  /** True once subscribe_events' snapshot arrived on the current connection. */
  synced: boolean;
  needLogin: boolean;
  loginError: string | undefined;
  devices: ReadonlyMap<string, Device>;
  jobs: ReadonlyMap<string, Job>;
  /** Last action error, shown until the next action. */
  notice: string | undefined;
}

export const isActive = (job: Job): boolean => job.status === 'queued' || job.status === 'running';

/** The page's state: replaced (never mutated) so a render sees one consistent version. */
export class Store {
  private listeners = new Set<() => void>();
  state: AppState = { connection: 'connecting', synced: false, needLogin: false, loginError: undefined, devices: new Map(), jobs: new Map(), notice: undefined };

  set(patch: Partial<AppState>): void {
    this.state = { ...this.state, ...patch };
    for (const l of this.listeners) l();
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** One subscribe_events frame. `initial_state` replaces everything: that is the resync. */
  applyEvent(name: string, data: unknown): void {
    const { devices, jobs } = this.state;
    switch (name) {
      case 'initial_state': {
        const snapshot = data as { devices: Device[]; jobs: Job[] };
        this.set({ synced: true, devices: new Map(snapshot.devices.map((d) => [d.configuration, d])), jobs: new Map(snapshot.jobs.map((j) => [j.id, j])) });
        return;
      }
      case 'device_added':
      case 'device_updated': {
        const device = data as Device;
        return this.set({ devices: new Map(devices).set(device.configuration, device) });
      }
      case 'device_removed': {
        const next = new Map(devices);
        next.delete((data as { configuration: string }).configuration);
        return this.set({ devices: next });
      }
      case 'job_progress': {
        const { job_id, progress } = data as { job_id: string; progress: number };
        const job = jobs.get(job_id);
        // A late progress frame never drags a finished job back.
        if (job && isActive(job)) this.set({ jobs: new Map(jobs).set(job_id, { ...job, progress }) });
        return;
      }
      case 'jobs_cleared': {
        const next = new Map(jobs);
        for (const id of (data as { job_ids: string[] }).job_ids) next.delete(id);
        return this.set({ jobs: next });
      }
      default:
        if (name.startsWith('job_')) {
          const job = data as Job;
          this.set({ jobs: new Map(jobs).set(job.id, job) });
        }
    }
  }
}

/** Re-render the calling component whenever the store changes. */
export function useStore(store: Store): AppState {
  const [, bump] = useState(0);
  useEffect(() => store.subscribe(() => bump((n) => n + 1)), [store]);
  return store.state;
}
