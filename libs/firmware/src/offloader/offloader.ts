import { stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { BusImplementation, remotePb as pb } from '@kiln/contracts';
import { invalidArgs, type Clock } from '@kiln/core';
import type { Logger } from '@kiln/logging';
import { loadOrCreateIdentity, readIdentity, ReceiverPairings, type PeerIdentity } from '@kiln/remote-identity/store';
import type { OffloadExecutor, ReceiverPool } from '../executors/offload-executor.js';
import type { PairingControl } from './pairing-control.js';
import { toPairing } from './pairing-view.js';
import { hasPairings, VERSION_MATCH_POLICIES, type OffloaderSettings, type OffloaderSettingsStore, type VersionMatchPolicy } from './settings-store.js';

/** How often receivers.json is checked for changes made by another process (`kiln pair`). */
const PAIRINGS_POLL_MS = 2_000;

export interface OffloaderDeps {
  /** `<data_dir>/offloader`. */
  dir: string;
  settings: OffloaderSettingsStore;
  configDir: string;
  executor: OffloadExecutor;
  logger: Logger;
  clock: Clock;
}

/**
 * The offloader side of remote builds inside the firmware service: its settings, and the receiver
 * pool attached to the compile lane's executor while something is paired (remote_builds_enabled
 * steers automatic placement only; a build sent to one receiver does not follow it). The pool (and
 * with it gRPC) is loaded on first need only.
 */
export class Offloader implements BusImplementation<pb.OffloaderServiceDefinition> {
  private pool: ReceiverPool | undefined;
  private refreshing: Promise<void> = Promise.resolve();
  private control: Promise<PairingControl> | undefined;
  private poller: NodeJS.Timeout | undefined;
  private pairingsStamp = -1;
  private identity: Promise<PeerIdentity> | undefined;
  private readonly pairings: ReceiverPairings;
  private changeListener: ((view: pb.OffloaderSettingsResponse) => void) | undefined;
  /** Views are announced one at a time, in order, and only when they differ from the last one. */
  private announcing: Promise<void> = Promise.resolve();
  private lastAnnounced = '';

  constructor(private readonly deps: OffloaderDeps) {
    this.pairings = new ReceiverPairings(deps.dir);
    // A receiver connecting or going away changes which pairings are eligible.
    deps.executor.onPoolChange(() => this.announce());
  }

  /**
   * Told the view (as `view()` answers it) after every change of the settings or pairings, once it
   * is persisted, and whenever a receiver becomes eligible or ineligible.
   */
  onChange(listener: ((view: pb.OffloaderSettingsResponse) => void) | undefined): void {
    this.changeListener = listener;
  }

  private announce(): void {
    if (!this.changeListener) return;
    this.announcing = this.announcing.then(async () => {
      const listener = this.changeListener;
      if (!listener) return;
      try {
        const view = await this.view(false);
        const text = JSON.stringify(view);
        if (text === this.lastAnnounced) return;
        this.lastAnnounced = text;
        listener(view);
      } catch (err) {
        this.deps.logger.warn({ err }, 'could not announce the offloader settings');
      }
    });
  }

  get settings(): OffloaderSettingsStore {
    return this.deps.settings;
  }

  async start(): Promise<void> {
    await this.settings.load();
    this.pairingsStamp = await this.pairingsFileStamp();
    // Nothing changed yet: not announced (and this host's identity is not created before it is asked for).
    await this.refresh(false);
    // `kiln pair` writes receivers.json from another process: a running host follows it.
    this.poller = setInterval(() => void this.followPairingsFile(), PAIRINGS_POLL_MS);
    this.poller.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.poller);
    (await this.control?.catch(() => undefined))?.stop();
    await this.refreshing.catch(() => undefined);
    this.deps.executor.attachPool(undefined);
    await this.pool?.stop();
    this.pool = undefined;
  }

  // ---- the remote_build/* offloader commands: OffloaderService (remote.proto) ---------------

  /**
   * Settings, pairings (each with whether the compile lane can use it now) and this host's own
   * identity as an offloader, created on first use unless `createIdentity` is false (then left out
   * while there is none: creating a key loads the X.509 toolkit, which a subscriber's snapshot or a
   * change announcement must not cost an idle host). Reading files only: no gRPC.
   */
  async view(createIdentity = true): Promise<pb.OffloaderSettingsResponse> {
    const s = this.settings.settings;
    const own = createIdentity ? await this.ownIdentity() : await this.existingIdentity();
    return {
      settings: { remoteBuildsEnabled: s.remote_builds_enabled, versionMatchPolicy: s.version_match_policy, includeLocalInPool: s.include_local_in_pool },
      pairings: await this.pairingRows(),
      ...(own ? { identity: { dashboardId: own.dashboardId, pinSha256: own.fingerprint, name: own.name } } : {}),
    };
  }

  async getOffloaderSettings(request: pb.GetOffloaderSettingsRequest): Promise<pb.OffloaderSettingsResponse> {
    return this.view(!request.withoutCreatingIdentity);
  }

  async setOffloaderSettings(request: pb.SetOffloaderSettingsRequest): Promise<pb.OffloaderSettingsResponse> {
    const change: Partial<OffloaderSettings> = {};
    if (request.remoteBuildsEnabled !== undefined) change.remote_builds_enabled = request.remoteBuildsEnabled;
    if (request.includeLocalInPool !== undefined) change.include_local_in_pool = request.includeLocalInPool;
    if (request.versionMatchPolicy !== undefined) {
      if (!(VERSION_MATCH_POLICIES as readonly string[]).includes(request.versionMatchPolicy)) {
        throw invalidArgs('version_match_policy', request.versionMatchPolicy, `must be one of ${VERSION_MATCH_POLICIES.join(', ')}`);
      }
      change.version_match_policy = request.versionMatchPolicy as VersionMatchPolicy;
    }
    await this.settings.update(change);
    await this.refresh();
    return this.view();
  }

  async previewPair(request: pb.PreviewPairRequest): Promise<pb.PreviewPairResponse> {
    return (await this.pairingControl()).preview(request.hostname, request.port);
  }

  async requestPair(request: pb.OffloaderPairRequest): Promise<pb.OffloaderPairResponse> {
    return (await this.pairingControl()).requestPair(request);
  }

  async unpair({ pinSha256 }: pb.UnpairRequest): Promise<pb.UnpairResponse> {
    return { removed: await (await this.pairingControl()).unpair(pinSha256) };
  }

  async setPairingEnabled({ pinSha256, enabled }: pb.SetPairingEnabledRequest): Promise<pb.SetPairingEnabledResponse> {
    const row = await (await this.pairingControl()).setEnabled(pinSha256, enabled);
    return { pairing: (await this.pairingRows()).find((p) => p.pinSha256 === row.pin)! };
  }

  async editPairingEndpoint(request: pb.EditPairingEndpointRequest): Promise<pb.EditPairingEndpointResponse> {
    const row = await (await this.pairingControl()).editEndpoint(request);
    return { pairing: (await this.pairingRows()).find((p) => p.pinSha256 === row.pin) ?? toPairing(row, false) };
  }

  /** The recorded receivers, each with whether the compile lane can use it now. */
  private async pairingRows(): Promise<pb.OffloaderPairing[]> {
    const eligible = new Set(this.settings.settings.remote_builds_enabled ? (this.pool?.eligible().map((r) => r.id) ?? []) : []);
    return (await this.pairings.list()).map((row) => toPairing(row, eligible.has(row.dashboardId)));
  }

  /**
   * This host's certificate as an offloader (`<dir>/identity`), created on first need: reading the
   * settings creates it, so the page can show the pin before the first pairing. Creating it loads the
   * certificate generator once; nothing of gRPC.
   */
  /** This host's identity if it exists (created earlier, here or by `kiln pair`); never creates one. */
  private async existingIdentity(): Promise<PeerIdentity | undefined> {
    if (this.identity) return this.identity;
    const found = await readIdentity(join(this.deps.dir, 'identity'), { logger: this.deps.logger });
    if (found) this.identity = Promise.resolve(found);
    return found;
  }

  private ownIdentity(): Promise<PeerIdentity> {
    if (!this.identity) {
      this.identity = loadOrCreateIdentity(join(this.deps.dir, 'identity'), hostname(), { logger: this.deps.logger });
      // A failed read (unreadable file) is reported, and tried again on the next call.
      this.identity.catch(() => (this.identity = undefined));
    }
    return this.identity;
  }

  private async followPairingsFile(): Promise<void> {
    const stamp = await this.pairingsFileStamp();
    if (stamp === this.pairingsStamp) return;
    this.pairingsStamp = stamp;
    await this.refresh().catch((err: unknown) => this.deps.logger.warn({ err }, 'could not apply the changed receiver pairings'));
  }

  private async pairingsFileStamp(): Promise<number> {
    return (await stat(join(this.deps.dir, 'receivers.json')).catch(() => undefined))?.mtimeMs ?? 0;
  }

  /** gRPC and the pairing rows are loaded on the first pairing command. */
  private pairingControl(): Promise<PairingControl> {
    this.control ??= import('./pairing-control.js').then((m) => new m.PairingControl(this.deps.dir, () => this.ownIdentity(), this.deps.logger, () => this.refresh()));
    return this.control;
  }

  /**
   * After a settings or pairings change: attach, reload or detach the receivers. Serialised. The pool
   * stays attached while anything is paired, even with remote builds off: a build sent to one
   * receiver (remote_build/submit_job) is explicit and does not follow the master switch, which the
   * scheduler applies to automatic placement only.
   */
  refresh(announce = true): Promise<void> {
    const run = this.refreshing.then(async () => {
      const wanted = await hasPairings(this.deps.dir);
      if (wanted && !this.pool) {
        const { createReceiverPool } = await import('../executors/receiver-pool.js');
        this.pool = await createReceiverPool({
          offloaderDir: this.deps.dir,
          configDir: this.deps.configDir,
          versionPolicy: () => this.settings.settings.version_match_policy,
          logger: this.deps.logger,
          clock: this.deps.clock,
        });
        this.deps.executor.attachPool(this.pool);
        this.deps.logger.info({ detail: this.pool.detail(), remoteBuildsEnabled: this.settings.settings.remote_builds_enabled }, 'receivers attached to the compile lane');
      } else if (wanted && this.pool) {
        await this.pool.reload();
      } else if (!wanted && this.pool) {
        this.deps.executor.attachPool(undefined);
        await this.pool.stop();
        this.pool = undefined;
        this.deps.logger.info('no receiver paired: compiles run on this host');
      }
    });
    this.refreshing = run.catch(() => undefined);
    // Every settings or pairings change ends here, after it was written (announced even if the pool failed to follow).
    if (announce) void this.refreshing.then(() => this.announce());
    return run;
  }
}
