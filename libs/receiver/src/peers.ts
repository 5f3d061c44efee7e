import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { remotePb as pb } from '@kiln/contracts';
import { KilnError, readTextIfExists, writeFileAtomic, type Clock } from '@kiln/core';
import type { Logger } from '@kiln/logging';

/** An offloader as the receiver knows it. The certificate is what TLS trusts; the fingerprint is the pin. */
export interface PeerRecord {
  dashboardId: string;
  name: string;
  fingerprint: string;
  certPem: string;
  state: 'pending' | 'approved';
  requestedAtMs: number;
  approvedAtMs: number;
}

/**
 * Pending and approved offloaders, persisted atomically in `<data_dir>/receiver/peers.json` before
 * any change is visible (a crash never leaves a peer approved in memory only, or half-written).
 */
export class PeerRegistry {
  private peers = new Map<string, PeerRecord>();
  private readonly file: string;
  /** Changes are applied one at a time: each reads the state the previous one committed. */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(dir: string, private readonly clock: Clock, private readonly logger: Logger) {
    this.file = join(dir, 'peers.json');
  }

  async load(): Promise<void> {
    const text = await readTextIfExists(this.file);
    if (text === undefined) return;
    try {
      const records = JSON.parse(text) as PeerRecord[];
      if (!Array.isArray(records)) throw new Error('not a list');
      this.peers = new Map(records.map((r) => [r.dashboardId, r]));
    } catch (err) {
      // Unreadable: nobody is trusted (fail closed); the file is kept aside for inspection.
      const aside = `${this.file}.unreadable-${this.clock.now()}`;
      await rename(this.file, aside);
      this.logger.error({ err, aside }, 'peers file unreadable: moved aside, every offloader must pair again');
    }
  }

  list(): PeerRecord[] {
    return [...this.peers.values()].sort((a, b) => a.requestedAtMs - b.requestedAtMs);
  }

  /** The peer whose certificate has this fingerprint (pending or approved). */
  byFingerprint(fingerprint: string): PeerRecord | undefined {
    for (const peer of this.peers.values()) if (peer.fingerprint === fingerprint) return peer;
    return undefined;
  }

  /** Certificates TLS accepts as client identities (pending peers too: they must prove their key to see their status). */
  certificates(): string[] {
    return this.list().map((p) => p.certPem);
  }

  /**
   * A pairing request. A known peer presenting the same certificate keeps its state; a pending
   * request is replaced by a newer one; an approved peer's id with another key is refused.
   */
  request(peer: { dashboardId: string; name: string; fingerprint: string; certPem: string }, approve: boolean): Promise<PeerRecord> {
    return this.serial(async () => {
      const existing = this.peers.get(peer.dashboardId);
      const sameKey = existing?.fingerprint === peer.fingerprint;
      if (existing?.state === 'approved' && !sameKey) {
        // Otherwise anyone could unseat an approved offloader by claiming its id with another key.
        throw new KilnError('already_exists', `offloader ${peer.dashboardId} is already paired with another key; remove it on the receiver before pairing the new one`, {
          dashboardId: peer.dashboardId,
        });
      }
      const now = this.clock.now();
      const record: PeerRecord = {
        ...peer,
        state: approve || (sameKey && existing?.state === 'approved') ? 'approved' : 'pending',
        requestedAtMs: sameKey && existing ? existing.requestedAtMs : now,
        approvedAtMs: sameKey && existing?.state === 'approved' ? existing.approvedAtMs : approve ? now : 0,
      };
      await this.commit(new Map(this.peers).set(peer.dashboardId, record));
      return record;
    });
  }

  approve(ref: string): Promise<PeerRecord> {
    return this.serial(async () => {
      const peer = this.find(ref);
      if (peer.state === 'approved') return peer;
      const record: PeerRecord = { ...peer, state: 'approved', approvedAtMs: this.clock.now() };
      await this.commit(new Map(this.peers).set(peer.dashboardId, record));
      return record;
    });
  }

  /** The removed peer, or undefined when none matched. */
  remove(ref: string): Promise<PeerRecord | undefined> {
    return this.serial(async () => {
      const peer = this.lookup(ref);
      if (!peer) return undefined;
      const next = new Map(this.peers);
      next.delete(peer.dashboardId);
      await this.commit(next);
      return peer;
    });
  }

  private serial<T>(change: () => Promise<T>): Promise<T> {
    const run = this.tail.then(change, change);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** By dashboard id or fingerprint. */
  find(ref: string): PeerRecord {
    const peer = this.lookup(ref);
    if (!peer) throw new KilnError('not_found', `no offloader ${JSON.stringify(ref)} has asked to pair`, { peer: ref });
    return peer;
  }

  private lookup(ref: string): PeerRecord | undefined {
    return this.peers.get(ref) ?? this.byFingerprint(ref.replace(/[\s:]/g, '').toLowerCase());
  }

  private async commit(next: Map<string, PeerRecord>): Promise<void> {
    await writeFileAtomic(this.file, `${JSON.stringify([...next.values()], null, 2)}\n`, 0o600);
    this.peers = next;
  }
}

export function toPeerMessage(peer: PeerRecord): pb.Peer {
  return {
    dashboardId: peer.dashboardId,
    name: peer.name,
    fingerprint: peer.fingerprint,
    state: peer.state === 'approved' ? pb.PairState.PAIR_STATE_APPROVED : pb.PairState.PAIR_STATE_PENDING,
    requestedAtMs: peer.requestedAtMs,
    approvedAtMs: peer.approvedAtMs,
  };
}
