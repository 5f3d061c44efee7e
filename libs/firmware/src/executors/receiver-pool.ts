import { hostname } from 'node:os';
import { join } from 'node:path';
import { KILN_VERSION, remotePb as pb } from '@kiln/contracts';
import { createReceiverClient, type ReceiverClient } from '@kiln/contracts/grpc';
import { delay, isErrorCode, KilnError, toKilnError, type Clock } from '@kiln/core';
import type { Logger } from '@kiln/logging';
import { loadOrCreateIdentity, packBundle, ReceiverPairings, type PeerIdentity, type ReceiverPairing } from '@kiln/remote-identity';
import { configBundleFiles } from '../offloader/config-bundle.js';
import type { VersionMatchPolicy } from '../offloader/settings-store.js';
import type { ExecutorExit, ExecutorRequest } from './executor.js';
import { materialiseArtifacts } from './materialise.js';
import type { EligibleReceiver, PairedReceiver, ReceiverPool } from './offload-executor.js';

/**
 * gRPC side of the offloader (imported only when something is paired, so a
 * plain host never loads @grpc/grpc-js).
 */
export interface ReceiverPoolOptions {
  /** `<data_dir>/offloader`: identity/ and receivers.json, as `kiln pair` writes them. */
  offloaderDir: string;
  configDir: string;
  versionPolicy: () => VersionMatchPolicy;
  logger: Logger;
  clock: Clock;
}

interface Entry {
  pairing: ReceiverPairing;
  client: ReceiverClient;
  watch: AbortController;
  connected: boolean;
  status: pb.QueueStatusResponse | undefined;
  reportedAtMs: number;
  /** Its first connection attempt has ended (a status arrived, or the attempt failed or timed out). */
  attempted: boolean;
}

const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 5_000;
/** How long a first connection attempt may hold compiles back (a blackholed address can take a TCP timeout). */
const FIRST_ATTEMPT_MAX_MS = 5_000;

export async function createReceiverPool(options: ReceiverPoolOptions): Promise<ReceiverPool> {
  const identity = await loadOrCreateIdentity(join(options.offloaderDir, 'identity'), hostname(), { logger: options.logger });
  const pool = new GrpcReceiverPool(options, identity, new ReceiverPairings(options.offloaderDir));
  await pool.reload();
  return pool;
}

/** A connection per paired receiver, kept up by its QueueStatus stream (which also says whether it is idle). */
class GrpcReceiverPool implements ReceiverPool {
  private readonly entries = new Map<string, Entry>();
  private listener: () => void = () => undefined;
  private stopped = false;
  private settleWaiters: Array<() => void> = [];

  constructor(
    private readonly options: ReceiverPoolOptions,
    private readonly identity: PeerIdentity,
    private readonly pairings: ReceiverPairings,
  ) {}

  onChange(listener: () => void): void {
    this.listener = listener;
  }

  eligible(): EligibleReceiver[] {
    const policy = this.options.versionPolicy();
    return [...this.entries.values()]
      .filter((e) => e.pairing.enabled && e.connected && e.status && versionMatches(policy, e.status.kilnVersion))
      .map((e) => ({ id: e.pairing.dashboardId, label: labelOf(e.pairing), reportedIdle: e.status!.idle, reportedAtMs: e.reportedAtMs }));
  }

  settled(): Promise<void> {
    if (this.isSettled()) return Promise.resolve();
    return new Promise((resolve) => this.settleWaiters.push(resolve));
  }

  private isSettled(): boolean {
    return this.stopped || [...this.entries.values()].every((e) => !e.pairing.enabled || e.attempted);
  }

  private wakeSettled(): void {
    if (!this.isSettled()) return;
    const waiters = this.settleWaiters;
    this.settleWaiters = [];
    for (const wake of waiters) wake();
  }

  byPin(pin: string): PairedReceiver | undefined {
    const entry = [...this.entries.values()].find((e) => e.pairing.pin === pin);
    if (!entry) return undefined;
    const version = entry.status?.kilnVersion ?? '';
    return {
      id: entry.pairing.dashboardId,
      label: labelOf(entry.pairing),
      connected: entry.connected,
      connecting: !entry.connected && !entry.attempted,
      version,
      versionOk: entry.status !== undefined && versionMatches(this.options.versionPolicy(), version),
    };
  }

  async reload(): Promise<void> {
    const rows = await this.pairings.list();
    const wanted = new Map(rows.map((r) => [r.dashboardId, r]));
    for (const [id, entry] of this.entries) {
      const row = wanted.get(id);
      if (!row || row.address !== entry.pairing.address || row.pin !== entry.pairing.pin) this.drop(id);
      else entry.pairing = row;
    }
    for (const row of rows) if (!this.entries.has(row.dashboardId) && !this.stopped) this.add(row);
    this.wakeSettled();
    this.listener();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const id of [...this.entries.keys()]) this.drop(id);
    this.wakeSettled();
  }

  detail(): Record<string, string> {
    return { pairedReceivers: String(this.entries.size), connectedReceivers: String([...this.entries.values()].filter((e) => e.connected).length) };
  }

  async compile(receiverId: string, request: ExecutorRequest, out: (lines: string[]) => Promise<void>, signal: AbortSignal): Promise<ExecutorExit> {
    const entry = this.entries.get(receiverId);
    if (!entry) return lostExit(new KilnError('unavailable', `receiver ${receiverId} is no longer paired`, { receiver: receiverId }));
    const { client } = entry;
    try {
      const { files, unresolved } = await configBundleFiles(this.options.configDir, request.configuration);
      if (unresolved.length > 0) {
        // Said before the compile: if the receiver needs such a file, its esphome fails naming it, and this says why.
        this.options.logger.warn({ configuration: request.configuration, unresolved }, 'config bundle: references with unresolved substitutions not sent');
        await out(unresolved.map((u) => `... [warning: ${u.file}: ${JSON.stringify(u.ref)} not sent to the receiver: ${u.reason}]`));
      }
      const bundle = await packBundle(files);
      const { sha256, sent } = await client.submitBundle(bundle);
      await out([`... [config bundle ${sha256.slice(0, 12)}: ${sent ? `sent (${bundle.length} bytes)` : 'unchanged, already on the receiver'}]`]);
      if (signal.aborted) return CANCELLED;
      const build = await client.startBuild({ bundleSha256: sha256, configuration: request.configuration, action: pb.BuildAction.BUILD_ACTION_COMPILE });
      const cancel = (): void => void client.cancel(build.buildId).catch((err: unknown) => this.options.logger.warn({ err, buildId: build.buildId }, 'remote cancel failed'));
      signal.addEventListener('abort', cancel, { once: true });
      if (signal.aborted) cancel();
      let final: pb.BuildState | undefined;
      try {
        for await (const event of client.follow(build.buildId)) {
          if (event.$case === 'output') await out(event.value.lines);
          else final = event.value;
        }
      } finally {
        signal.removeEventListener('abort', cancel);
      }
      switch (final?.status) {
        case pb.BuildStatus.BUILD_STATUS_COMPLETED: {
          const images = await client.downloadArtifacts(build.buildId);
          const { dir, serialUploadWarning } = await materialiseArtifacts(this.options.configDir, request.configuration, final.deviceName, images);
          const bytes = images.reduce((n, i) => n + i.data.length, 0);
          await out([`... [${images.length} files (${bytes} bytes, SHA-256 verified; images and flash layout) downloaded to ${dir}]`]);
          if (serialUploadWarning) await out([`... [warning: ${serialUploadWarning}]`]);
          return { exitCode: 0, signal: null };
        }
        case pb.BuildStatus.BUILD_STATUS_CANCELLED:
          return CANCELLED;
        case pb.BuildStatus.BUILD_STATUS_FAILED:
          return final.exitCode > 0 ? { exitCode: final.exitCode, signal: null } : { exitCode: null, signal: null, error: new KilnError('internal_error', `remote compile failed: ${final.error}`, {}) };
        default:
          return lostExit(new KilnError('unavailable', `receiver ${labelOf(entry.pairing)} ended the build without a final state`, {}));
      }
    } catch (err) {
      const error = toKilnError(err);
      // The receiver (or the way to it) went away: not the build's fault, the scheduler tries elsewhere.
      if (error.code === 'unavailable' || error.code === 'timeout' || error.code === 'cancelled') return lostExit(new KilnError('unavailable', `receiver ${labelOf(entry.pairing)}: ${error.message}`, {}));
      return { exitCode: null, signal: null, error: new KilnError(isErrorCode(error.code) ? error.code : 'internal_error', `remote compile on ${labelOf(entry.pairing)}: ${error.message}`, {}) };
    }
  }

  private add(pairing: ReceiverPairing): void {
    const entry: Entry = {
      pairing,
      client: createReceiverClient({ address: pairing.address, identity: this.identity, pin: pairing.pin }),
      watch: new AbortController(),
      connected: false,
      status: undefined,
      reportedAtMs: 0,
      attempted: false,
    };
    this.entries.set(pairing.dashboardId, entry);
    void this.watch(entry);
    const firstAttemptOver = setTimeout(() => {
      if (this.attempted(entry)) this.listener();
    }, FIRST_ATTEMPT_MAX_MS);
    firstAttemptOver.unref();
    entry.watch.signal.addEventListener('abort', () => clearTimeout(firstAttemptOver), { once: true });
  }

  /**
   * The first attempt is over: compiles waiting in settled() stop waiting for it (and jobs sent to this
   * receiver, once the caller tells the listener). True when this call ended it.
   */
  private attempted(entry: Entry): boolean {
    if (entry.attempted) return false;
    entry.attempted = true;
    this.wakeSettled();
    return true;
  }

  private drop(id: string): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    entry.watch.abort();
    entry.client.close();
    this.wakeSettled();
  }

  /** Follow the receiver's queue status for as long as it is paired; reconnect with backoff. */
  private async watch(entry: Entry): Promise<void> {
    let backoff = RECONNECT_MIN_MS;
    while (!entry.watch.signal.aborted) {
      try {
        for await (const status of entry.client.queueStatus({ signal: entry.watch.signal })) {
          const changed = !entry.connected || entry.status?.idle !== status.idle;
          entry.connected = true;
          entry.status = status;
          entry.reportedAtMs = this.options.clock.now();
          backoff = RECONNECT_MIN_MS;
          // The first status is always a change (the listener hears of the attempt through it).
          this.attempted(entry);
          if (changed) this.listener();
        }
      } catch (err) {
        if (!entry.watch.signal.aborted) this.options.logger.debug({ err, receiver: labelOf(entry.pairing) }, 'receiver status stream ended');
      }
      if (entry.connected) {
        entry.connected = false;
        this.options.logger.warn({ receiver: labelOf(entry.pairing) }, 'receiver disconnected');
        this.listener();
      } else if (this.attempted(entry)) {
        this.listener();
      }
      if (entry.watch.signal.aborted) return;
      await delay(backoff, entry.watch.signal).catch(() => undefined);
      backoff = Math.min(RECONNECT_MAX_MS, backoff * 2);
    }
  }
}

const CANCELLED: ExecutorExit = { exitCode: null, signal: 'SIGTERM' };

function lostExit(error: KilnError): ExecutorExit {
  return { exitCode: null, signal: null, lost: true, error };
}

function labelOf(pairing: ReceiverPairing): string {
  return `${pairing.name} (${pairing.address})`;
}

/** The protocol is checked by the client on every status; the Kiln version by the policy. */
export function versionMatches(policy: VersionMatchPolicy, theirs: string): boolean {
  if (policy === 'any') return true;
  if (policy === 'exact') return theirs === KILN_VERSION;
  const release = (version: string): string => version.split('.').slice(0, 2).join('.');
  return release(theirs) === release(KILN_VERSION);
}
