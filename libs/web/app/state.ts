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

/** An offloader as the receiver lists it (remote_build/get_identity, remote_build_pair_status_changed). */
export interface Peer {
  dashboard_id: string;
  name: string;
  pin_sha256: string;
  status: 'pending' | 'approved';
  requested_at: string | null;
  approved_at: string | null;
}

/** This host's receiver (remote_build/get_identity). */
export interface Identity {
  dashboard_id: string;
  name: string;
  pin_sha256: string;
  address: string;
  listener_bound: boolean;
  pairing_open: boolean;
  pairing_closes_at: string | null;
  peers: Peer[];
}

/** A receiver this host paired with (remote_build/get_offloader_settings). */
export interface Pairing {
  dashboard_id: string;
  label: string;
  hostname: string;
  port: number;
  pin_sha256: string;
  enabled: boolean;
  paired_at: string | null;
  eligible: boolean;
}

export type VersionPolicy = 'any' | 'release' | 'exact';

/** This host as an offloader (remote_build/get_offloader_settings, remote_build_offloader_changed). */
export interface OffloaderSettings {
  remote_builds_enabled: boolean;
  version_match_policy: VersionPolicy;
  include_local_in_pool: boolean;
  pairings: Pairing[];
  /** This host as an offloader: the certificate it presents to receivers. */
  identity: { dashboard_id: string; pin_sha256: string; name: string } | null;
}

export interface ErrorInfo {
  code: string;
  message: string;
}

/** One side of remote builds: its state, or why there is none (e.g. `unavailable`: not hosted). */
export interface RemoteSide<T> {
  value: T | undefined;
  error: ErrorInfo | undefined;
}

/** Which side's state an event needs but the page lacks (it was not answering at the snapshot): read it again. */
export type RemoteSideName = 'receiver' | 'offloader';

export interface AppState {
  connection: ConnectionState;
  /** True once subscribe_events' snapshot arrived on the current connection. */
  synced: boolean;
  needLogin: boolean;
  loginError: string | undefined;
  devices: ReadonlyMap<string, Device>;
  jobs: ReadonlyMap<string, Job>;
  /** Remote builds: from initial_state, then kept current by the remote_build_* events. */
  receiver: RemoteSide<Identity>;
  offloader: RemoteSide<OffloaderSettings>;
  /** Last action error, shown until the next action. */
  notice: string | undefined;
}

export const isActive = (job: Job): boolean => job.status === 'queued' || job.status === 'running';

/** The page's state: replaced (never mutated) so a render sees one consistent version. */
export class Store {
  private listeners = new Set<() => void>();
  state: AppState = {
    connection: 'connecting',
    synced: false,
    needLogin: false,
    loginError: undefined,
    devices: new Map(),
    jobs: new Map(),
    receiver: { value: undefined, error: undefined },
    offloader: { value: undefined, error: undefined },
    notice: undefined,
  };

  /** Called when a remote-build event arrives for a side the page has no state of (see RemoteSideName). */
  onMissingRemote: (side: RemoteSideName) => void = () => undefined;

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
        const snapshot = data as { devices: Device[]; jobs: Job[]; remote_build?: RemoteSnapshot };
        const remote = snapshot.remote_build;
        this.set({
          synced: true,
          devices: new Map(snapshot.devices.map((d) => [d.configuration, d])),
          jobs: new Map(snapshot.jobs.map((j) => [j.id, j])),
          receiver: { value: remote?.receiver ?? undefined, error: remote?.receiver_error ?? undefined },
          offloader: { value: remote?.offloader ?? undefined, error: remote?.offloader_error ?? undefined },
        });
        // A side that is hosted but did not answer in time (a busy host) is read again; `unavailable`
        // means it is not hosted here, and an event of it would bring it back.
        if (remote?.receiver_error && remote.receiver_error.code !== 'unavailable') this.onMissingRemote('receiver');
        if (remote?.offloader_error && remote.offloader_error.code !== 'unavailable') this.onMissingRemote('offloader');
        return;
      }
      case 'remote_build_pairing_window_changed':
        return this.patchReceiver((r) => ({ ...r, ...(data as Pick<Identity, 'pairing_open' | 'pairing_closes_at'>) }));
      case 'remote_build_pair_status_changed': {
        const peer = data as Omit<Peer, 'status'> & { status: Peer['status'] | 'removed' };
        return this.patchReceiver((r) => {
          const others = r.peers.filter((p) => p.dashboard_id !== peer.dashboard_id);
          // Kept in request order (as get_identity lists them).
          const peers = peer.status === 'removed' ? others : [...others, peer as Peer].sort((a, b) => (a.requested_at ?? '').localeCompare(b.requested_at ?? ''));
          return { ...r, peers };
        });
      }
      case 'remote_build_identity_changed':
        return this.set({ receiver: { value: data as Identity, error: undefined } });
      case 'remote_build_offloader_changed':
        return this.set({ offloader: { value: data as OffloaderSettings, error: undefined } });
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

  /** A receiver event patches the state the page has; without one (not answering at the snapshot) it is read again. */
  private patchReceiver(change: (identity: Identity) => Identity): void {
    const { value } = this.state.receiver;
    if (!value) return this.onMissingRemote('receiver');
    this.set({ receiver: { value: change(value), error: undefined } });
  }
}

/** initial_state's remote_build: each side's state, or the error reading it. */
interface RemoteSnapshot {
  receiver: Identity | null;
  receiver_error: ErrorInfo | null;
  offloader: OffloaderSettings | null;
  offloader_error: ErrorInfo | null;
}

/** Re-render the calling component whenever the store changes. */
export function useStore(store: Store): AppState {
  const [, bump] = useState(0);
  const rendered = store.state;
  useEffect(() => {
    const unsubscribe = store.subscribe(() => bump((n) => n + 1));
    // Effects run after paint: a change in between (on a reload the socket can open, and the snapshot
    // arrive, before this runs) would otherwise leave the first render on screen until the next change.
    if (store.state !== rendered) bump((n) => n + 1);
    return unsubscribe;
  }, [store]);
  return rendered;
}
