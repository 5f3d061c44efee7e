import { remotePb as pb } from '@kiln/contracts';
import { createReceiverClient, previewReceiver } from '@kiln/contracts/grpc';
import { delay, invalidArgs, KilnError, notFound } from '@kiln/core';
import type { Logger } from '@kiln/logging';
import { joinAddress, parsePin, ReceiverPairings, type PeerIdentity, type ReceiverPairing } from '@kiln/remote-identity';
import { toPairing } from './pairing-view.js';

/** How long a pending pair request is watched for the receiver's approval before it is given up. */
const PENDING_WATCH_MS = 10 * 60_000;
const PENDING_POLL_MS = 1_000;

/**
 * The offloader's pairing commands (gRPC to the receiver, rows in receivers.json): loaded on first
 * use only. `changed` runs after every change of the rows, so the compile lane follows them.
 */
export class PairingControl {
  private readonly pairings: ReceiverPairings;
  /** Ends the background waits for pending approvals (service stop). */
  private readonly stopping = new AbortController();

  constructor(
    dir: string,
    private readonly ownIdentity: () => Promise<PeerIdentity>,
    private readonly logger: Logger,
    private readonly changed: () => Promise<void>,
  ) {
    this.pairings = new ReceiverPairings(dir);
  }

  async preview(hostname: string, port: number): Promise<pb.PreviewPairResponse> {
    const { pin, identity } = await previewReceiver(addressOf(hostname, port), await this.ownIdentity());
    return {
      pinSha256: pin,
      dashboardId: identity.dashboardId,
      name: identity.name,
      kilnVersion: identity.kilnVersion,
      protocolVersion: identity.protocolVersion,
      pairingOpen: identity.pairingOpen,
      requiresPairingKey: identity.pairingKeyArmed,
    };
  }

  /**
   * Ask the receiver (pinned to the confirmed pin) to pair. Approved at once (a pairing key, or a
   * receiver that approves on request): recorded now. Pending: recorded when the receiver approves
   * (watched in the background for a while).
   */
  async requestPair(request: pb.OffloaderPairRequest): Promise<pb.OffloaderPairResponse> {
    const pin = parsePin('pin_sha256', request.pinSha256);
    const address = addressOf(request.hostname, request.port);
    const own = await this.ownIdentity();
    const identity = request.offloaderLabel ? { ...own, name: request.offloaderLabel } : own;
    const preview = await previewReceiver(address, own);
    if (preview.pin !== pin) {
      throw new KilnError('permission_denied', `receiver at ${address} presents pin ${preview.pin}, not the confirmed ${pin}`, { field: 'pin_sha256', value: pin, presented: preview.pin });
    }
    const row: ReceiverPairing = {
      dashboardId: preview.identity.dashboardId,
      name: request.receiverLabel || preview.identity.name,
      address,
      pin,
      enabled: true,
      pairedAtMs: Date.now(),
    };
    const client = createReceiverClient({ address, identity, pin });
    let state: pb.PairState;
    try {
      state = (await client.requestPair(request.pairingKey ? { pairingKey: request.pairingKey } : {})).state;
    } catch (err) {
      client.close();
      throw err;
    }
    if (state === pb.PairState.PAIR_STATE_APPROVED) {
      client.close();
      await this.pairings.save(row);
      await this.changed();
      return { status: 'approved', pairing: toPairing(row, false) };
    }
    if (state !== pb.PairState.PAIR_STATE_PENDING) {
      client.close();
      throw new KilnError('permission_denied', `receiver at ${address} refused the pair request`, { hostname: request.hostname, port: request.port });
    }
    void this.awaitApproval(client, row);
    return { status: 'pending', pairing: toPairing(row, false) };
  }

  async unpair(pinArg: string): Promise<boolean> {
    const pin = parsePin('pin_sha256', pinArg);
    const removed = await this.pairings.remove(pin);
    if (removed) await this.changed();
    return removed;
  }

  async setEnabled(pinArg: string, enabled: boolean): Promise<ReceiverPairing> {
    const pin = parsePin('pin_sha256', pinArg);
    const row = (await this.pairings.list()).find((r) => r.pin === pin);
    if (!row) throw notFound('pin_sha256', pin);
    const next = { ...row, enabled };
    await this.pairings.save(next);
    await this.changed();
    return next;
  }

  /**
   * Rebind a pairing to the receiver's new address. Trusted like the pairing itself: the new endpoint
   * is probed first and must present the pairing's pin, so an edit can never point builds (and config
   * bundles) at another machine. Persisted before `changed` makes the pool reconnect there.
   */
  async editEndpoint(request: pb.EditPairingEndpointRequest): Promise<ReceiverPairing> {
    const pin = parsePin('pin_sha256', request.pinSha256);
    const address = addressOf(request.hostname, request.port);
    if (!(await this.pairings.list()).some((r) => r.pin === pin)) throw notFound('pin_sha256', pin);
    const presented = (await previewReceiver(address, await this.ownIdentity())).pin;
    if (presented !== pin) {
      throw new KilnError('permission_denied', `receiver at ${address} presents pin ${presented}, not the paired ${pin}: the address was not changed`, {
        field: 'pin_sha256',
        value: pin,
        presented,
        address,
      });
    }
    const row = await this.pairings.update(pin, (r) => ({ ...r, address }));
    // Unpaired while the probe ran.
    if (!row) throw notFound('pin_sha256', pin);
    await this.changed();
    this.logger.info({ receiver: row.name, address }, 'receiver pairing moved to a new address');
    return row;
  }

  stop(): void {
    this.stopping.abort();
  }

  private async awaitApproval(client: ReturnType<typeof createReceiverClient>, row: ReceiverPairing): Promise<void> {
    const deadline = Date.now() + PENDING_WATCH_MS;
    try {
      while (Date.now() < deadline) {
        await delay(PENDING_POLL_MS, this.stopping.signal);
        const { state } = await client.pairStatus().catch(() => ({ state: pb.PairState.PAIR_STATE_PENDING }));
        if (state === pb.PairState.PAIR_STATE_APPROVED) {
          await this.pairings.save({ ...row, pairedAtMs: Date.now() });
          await this.changed();
          this.logger.info({ receiver: row.name, address: row.address }, 'receiver approved the pair request');
          return;
        }
        if (state === pb.PairState.PAIR_STATE_UNPAIRED) return;
      }
    } catch (err) {
      if (!this.stopping.signal.aborted) this.logger.warn({ err, receiver: row.address }, 'waiting for a pair approval failed');
    } finally {
      client.close();
    }
  }
}

/** A receiver's host and port as typed (validated again here: the bus is an entry point too). */
function addressOf(hostname: string, port: number): string {
  const host = hostname.trim();
  if (!host || host.length > 253 || !/^[^\s/\0]+$/.test(host)) throw invalidArgs('hostname', hostname, 'must be a host name or IP address');
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw invalidArgs('port', port, 'must be 1-65535');
  return joinAddress(host, port);
}
