import { join } from 'node:path';
import { REMOTE_PROTOCOL_VERSION, remotePb as pb } from '@kiln/contracts';
import { assertDisplayName, assertSafeId, KilnError, type Clock } from '@kiln/core';
import type { Logger } from '@kiln/logging';
import { certificateFingerprint, loadOrCreateIdentity, PeerTrustStore, rotateIdentity, type PeerIdentity } from '@kiln/remote-identity';
import { RunningGroups, Toolchain, toolchainCommand } from '@kiln/toolchain';
import { readArtifacts, type Artifact } from './artifacts.js';
import { BundleStore } from './bundle-store.js';
import { Builds, type Build } from './builds.js';
import { PairingKey, PairingWindow, UnprovenCertificates } from './pairing.js';
import { PeerRegistry, toPeerMessage, type PeerRecord } from './peers.js';
import type { ReceiverSettings } from './settings.js';
import { sweepColdBuilds, type SweepResult } from './sweep.js';

/** Requests waiting for a person's decision: a handful in practice. */
const MAX_PENDING_PEERS = 16;

/** A change of what get_identity shows (the peer as it is now; as it was, when removed). */
export type ReceiverChange = { kind: 'pairing_window' } | { kind: 'identity' } | { kind: 'peer'; peer: PeerRecord; removed: boolean };

export interface ReceiverDeps {
  /** `<data_dir>/receiver`: identity, peers, bundles. */
  stateDir: string;
  configDir: string;
  settings: ReceiverSettings;
  kilnVersion: string;
  clock: Clock;
  logger: Logger;
  toolchain?: Toolchain;
}

/**
 * Everything a receiver knows and decides, transport aside: its identity, the pairing window and
 * key, the peers, the bundles and the compile lane. The gRPC and bus bindings only translate.
 */
export class Receiver {
  readonly settings: ReceiverSettings;
  readonly peers: PeerRegistry;
  readonly bundles: BundleStore;
  readonly builds: Builds;
  readonly window: PairingWindow;
  private readonly pairingKey: PairingKey;
  private readonly unproven = new UnprovenCertificates(MAX_PENDING_PEERS);
  private readonly laneListeners = new Set<() => void>();
  private readonly changeListeners = new Set<(change: ReceiverChange) => void>();
  private identityValue: PeerIdentity | undefined;
  private trustValue: PeerTrustStore | undefined;
  private readonly identityDir: string;
  /** The process group of each running compile, so a receiver that was killed reaps them at its next start. */
  private readonly groups: RunningGroups;

  constructor(private readonly deps: ReceiverDeps) {
    const { settings } = deps;
    this.settings = settings;
    this.identityDir = join(deps.stateDir, 'identity');
    this.peers = new PeerRegistry(deps.stateDir, deps.clock, deps.logger);
    const limits = { maxExtractedBytes: settings.maxExtractedBytes, maxEntries: settings.maxBundleEntries };
    this.bundles = new BundleStore(join(deps.stateDir, 'bundles'), settings.maxBundleBytes, limits);
    this.window = new PairingWindow(deps.clock, () => this.announce({ kind: 'pairing_window' }));
    this.pairingKey = new PairingKey(settings.pairingKeyFile, settings.pairingKeyTtlS * 1000, deps.clock, deps.logger);
    this.groups = new RunningGroups(join(deps.stateDir, 'running'));
    const toolchain = deps.toolchain ?? new Toolchain({ command: toolchainCommand(settings.toolchain), killGraceMs: settings.killGraceMs });
    this.builds = new Builds({
      configDir: deps.configDir,
      toolchain,
      bundles: this.bundles,
      limits,
      groups: this.groups,
      slots: settings.compileSlots,
      keepFinished: settings.keepFinishedBuilds,
      clock: deps.clock,
      logger: deps.logger,
      onLaneChange: () => this.laneListeners.forEach((l) => l()),
    });
  }

  async init(): Promise<void> {
    // Before any build runs: an orphaned compile must never write into a build dir a new build uses.
    for (const report of await this.groups.reap(this.settings.killGraceMs)) {
      if (report.outcome === 'killed' || report.outcome === 'survived') this.deps.logger.warn({ buildId: report.id, pgid: report.record?.pgid, outcome: report.outcome }, 'stopped a compile left running by a previous receiver process');
      else if (report.outcome === 'error') this.deps.logger.warn({ buildId: report.id, err: report.error }, 'a running-build record could not be reaped; ignored');
    }
    this.identityValue = await loadOrCreateIdentity(this.identityDir, this.settings.name, { logger: this.deps.logger });
    await this.peers.load();
    this.trustValue = new PeerTrustStore(this.identityValue, this.peers.certificates());
  }

  get identity(): PeerIdentity {
    if (!this.identityValue) throw new KilnError('unavailable', 'receiver not started', {});
    return this.identityValue;
  }

  get trust(): PeerTrustStore {
    if (!this.trustValue) throw new KilnError('unavailable', 'receiver not started', {});
    return this.trustValue;
  }

  async preview(): Promise<pb.PreviewIdentityResponse> {
    return {
      dashboardId: this.identity.dashboardId,
      name: this.identity.name,
      fingerprint: this.identity.fingerprint,
      kilnVersion: this.deps.kilnVersion,
      protocolVersion: REMOTE_PROTOCOL_VERSION,
      pairingOpen: this.window.isOpen,
      pairingKeyArmed: await this.pairingKey.armed(),
    };
  }

  /**
   * A pairing request. `connectionFingerprint` is the certificate this connection's TLS handshake
   * verified (undefined when the receiver did not trust it yet). The request is filed only when that
   * is the certificate in the request: otherwise anyone could file a request under another
   * offloader's pin (its certificate is no secret) with a name of their choosing.
   */
  async requestPair(req: pb.RequestPairRequest, connectionFingerprint: string | undefined): Promise<pb.RequestPairResponse> {
    assertSafeId('dashboard_id', req.dashboardId);
    const name = req.name.trim() === '' ? req.dashboardId : assertDisplayName('name', req.name.trim());
    let fingerprint: string;
    try {
      fingerprint = certificateFingerprint(req.certificatePem);
    } catch {
      throw new KilnError('invalid_args', 'certificate_pem: not a PEM certificate', { field: 'certificate_pem' });
    }
    if (req.receiverFingerprint !== this.identity.fingerprint) {
      throw new KilnError('failed_precondition', `receiver pin mismatch: you confirmed ${req.receiverFingerprint || '(none)'}, this receiver is ${this.identity.fingerprint}; preview it again`, {
        field: 'receiver_fingerprint',
        value: req.receiverFingerprint,
      });
    }
    if (connectionFingerprint !== undefined && connectionFingerprint !== fingerprint) {
      throw new KilnError('permission_denied', `certificate_pem (fingerprint ${fingerprint}) is not the certificate this connection presents (${connectionFingerprint}); nothing was filed`, {
        field: 'certificate_pem',
        value: fingerprint,
        presented: connectionFingerprint,
      });
    }
    const known = this.peers.byFingerprint(fingerprint);
    if (known?.state === 'approved' && known.dashboardId === req.dashboardId) return this.pairReply('approved');
    await this.assertMayRequest(req);
    if (connectionFingerprint === undefined) {
      // Nothing proves the caller holds this certificate's key yet: trust it for the next handshake
      // and let the offloader come back presenting it.
      this.unproven.add(fingerprint, req.certificatePem);
      this.refreshTrust();
      return { state: pb.PairState.PAIR_STATE_PROVE_KEY, receiverDashboardId: this.identity.dashboardId };
    }
    // Whoever holds the operator's one-shot key is approved by it: a headless receiver has nobody to click.
    const approve = req.pairingKey !== '';
    if (approve) await this.pairingKey.consume(req.pairingKey);
    const peer = await this.peers.request({ dashboardId: req.dashboardId, name, fingerprint, certPem: req.certificatePem }, approve);
    this.unproven.delete(fingerprint);
    this.refreshTrust();
    this.announce({ kind: 'peer', peer, removed: false });
    this.deps.logger.info({ peer: peer.dashboardId, name: peer.name, fingerprint, state: peer.state }, 'pairing requested');
    return this.pairReply(peer.state);
  }

  /** The gate of a new request: an open window (with room for one more) or an armed one-shot key. */
  private async assertMayRequest(req: pb.RequestPairRequest): Promise<void> {
    if (req.pairingKey !== '') {
      await this.pairingKey.assertArmed();
    } else if (!this.window.isOpen) {
      throw new KilnError('permission_denied', 'pairing refused: the receiver\'s pairing window is closed (open it on the receiver, or use its one-shot pairing key)', {});
    } else if (!this.peers.list().some((p) => p.dashboardId === req.dashboardId) && this.peers.list().filter((p) => p.state === 'pending').length >= MAX_PENDING_PEERS) {
      // An open window must not let anyone on the network grow the peers file without bound.
      throw new KilnError('unavailable', `pairing refused: ${MAX_PENDING_PEERS} requests already wait for approval on the receiver`, {});
    }
  }

  /** TLS trust anchors: pending and approved peers, and certificates offered but not proven yet. */
  private refreshTrust(): void {
    this.trust.setPeerCerts(this.identity, [...this.peers.certificates(), ...this.unproven.list()]);
  }

  pairStatus(connectionFingerprint: string | undefined): pb.PairStatusResponse {
    const peer = connectionFingerprint ? this.peers.byFingerprint(connectionFingerprint) : undefined;
    return this.pairReply(peer?.state ?? 'unpaired');
  }

  /** The approved peer's dashboard id for a connection; a clear refusal for anyone else. */
  approvedPeer(connectionFingerprint: string | undefined): string {
    const peer = connectionFingerprint ? this.peers.byFingerprint(connectionFingerprint) : undefined;
    if (!peer) throw new KilnError('not_authenticated', 'not paired: this receiver does not know your certificate (pair with it first)', {});
    if (peer.state !== 'approved') throw new KilnError('permission_denied', 'pairing not approved yet: approve this offloader on the receiver', { peer: peer.dashboardId });
    return peer.dashboardId;
  }

  async approve(ref: string): Promise<pb.Peer> {
    const peer = await this.peers.approve(ref);
    this.deps.logger.info({ peer: peer.dashboardId, fingerprint: peer.fingerprint }, 'offloader approved');
    this.announce({ kind: 'peer', peer, removed: false });
    return toPeerMessage(peer);
  }

  async remove(ref: string): Promise<boolean> {
    const removed = await this.peers.remove(ref);
    if (!removed) return false;
    this.refreshTrust();
    this.announce({ kind: 'peer', peer: removed, removed: true });
    return true;
  }

  /** New key and certificate (same dashboard id). Offloaders must confirm the new pin (preview + request). */
  async rotate(): Promise<void> {
    this.identityValue = await rotateIdentity(this.identityDir);
    this.trust.setIdentity(this.identityValue, [...this.peers.certificates(), ...this.unproven.list()]);
    this.deps.logger.warn({ fingerprint: this.identityValue.fingerprint }, 'receiver identity rotated: offloaders must confirm the new pin');
    this.announce({ kind: 'identity' });
  }

  identityReply(address: string): pb.GetIdentityResponse {
    return {
      dashboardId: this.identity.dashboardId,
      name: this.identity.name,
      fingerprint: this.identity.fingerprint,
      address,
      pairingOpen: this.window.isOpen,
      pairingClosesAtMs: this.window.closesAt,
      peers: this.peers.list().map(toPeerMessage),
    };
  }

  queueStatus(): pb.QueueStatusResponse {
    const lane = this.builds.laneStatus();
    return {
      dashboardId: this.identity.dashboardId,
      protocolVersion: REMOTE_PROTOCOL_VERSION,
      kilnVersion: this.deps.kilnVersion,
      ...lane,
      sentAtMs: this.deps.clock.now(),
    };
  }

  /** Told of every change of the window, the peers or the identity, once it is persisted. */
  onChange(listener: (change: ReceiverChange) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  private announce(change: ReceiverChange): void {
    for (const listener of this.changeListeners) listener(change);
  }

  onLaneChange(listener: () => void): () => void {
    this.laneListeners.add(listener);
    return () => this.laneListeners.delete(listener);
  }

  artifacts(build: Build): Promise<Artifact[]> {
    return readArtifacts(build, this.settings.maxArtifactBytes);
  }

  sweep(): Promise<SweepResult> {
    return sweepColdBuilds({
      configDir: this.deps.configDir,
      bundleDir: join(this.deps.stateDir, 'bundles'),
      ttlMs: this.settings.buildDirTtlS * 1000,
      clock: this.deps.clock,
      inFlightDirs: () => this.builds.inFlightDirs(),
      inFlightBundles: () => this.builds.inFlightBundles(),
    });
  }

  private pairReply(state: 'pending' | 'approved' | 'unpaired'): pb.PairStatusResponse {
    const map = { pending: pb.PairState.PAIR_STATE_PENDING, approved: pb.PairState.PAIR_STATE_APPROVED, unpaired: pb.PairState.PAIR_STATE_UNPAIRED } as const;
    return { state: map[state], receiverDashboardId: this.identity.dashboardId };
  }
}
