import { join } from 'node:path';
import { encode, KILN_VERSION, receiverSubjects, remotePb as pb, serveBus, type KilnService, type ServiceDeps } from '@kiln/contracts';
import { disposeAll, KilnError, systemClock, type Clock } from '@kiln/core';
import type { Toolchain } from '@kiln/toolchain';
import type { GrpcEndpoint } from './grpc-server.js';
import { Receiver, type ReceiverChange } from './receiver.js';
import { toPeerMessage } from './peers.js';
import { receiverSettingsSchema } from './settings.js';

export const RECEIVER_SERVICE = 'receiver';
/** A pairing window is for a person at hand: longer than a day is a mistake (and past ~24.8 days setTimeout would fire at once). */
const MAX_PAIRING_WINDOW_S = 86_400;
/** Reported to offloaders (they show it; compatibility is decided by the protocol version). */

export interface ReceiverService extends KilnService {
  readonly receiver: Receiver;
  /** Bound gRPC address once started. */
  readonly grpcAddress: string | undefined;
}

export interface ReceiverOverrides {
  clock?: Clock;
  toolchain?: Toolchain;
}

/**
 * A remote build receiver: gRPC (pinned TLS) for offloaders, control on the bus
 * (`kiln.receiver.<command>`) for the operator (gateway, CLI).
 */
export function createReceiverService(deps: ServiceDeps, overrides: ReceiverOverrides = {}): ReceiverService {
  const settings = deps.config.section(RECEIVER_SERVICE, receiverSettingsSchema);
  const clock = overrides.clock ?? systemClock;
  const receiver = new Receiver({
    stateDir: join(deps.config.core.dataDir, 'receiver'),
    configDir: deps.config.core.configDir,
    settings,
    kilnVersion: KILN_VERSION,
    clock,
    logger: deps.logger,
    ...(overrides.toolchain ? { toolchain: overrides.toolchain } : {}),
  });
  let grpc: GrpcEndpoint | undefined;
  let bindings: Disposable[] = [];
  let stopAnnouncing: (() => void) | undefined;
  let sweeper: NodeJS.Timeout | undefined;
  const address = (): string => grpc?.address ?? '';
  const sweep = (): void => {
    receiver.sweep().then(
      (r) => (r.removedDirs.length + r.removedBundles.length > 0 ? deps.logger.info(r, 'swept cold remote builds') : undefined),
      (err: unknown) => deps.logger.warn({ err }, 'remote build sweep failed'),
    );
  };
  return {
    name: RECEIVER_SERVICE,
    receiver,
    get grpcAddress() {
      return grpc?.address;
    },
    async start() {
      await receiver.init();
      // gRPC is imported only when a receiver runs: it is the heaviest module.
      const { startReceiverGrpc } = await import('./grpc-server.js');
      grpc = await startReceiverGrpc(receiver, settings.grpcListen, deps.logger);
      // The receiver tells after persisting; the event carries the state get_identity answers now.
      stopAnnouncing = receiver.onChange((change) => {
        try {
          deps.bus.publish(receiverSubjects.changed, encode(pb.ReceiverChanged, changedEvent(change, receiver.identityReply(address()))));
        } catch (err) {
          deps.logger.warn({ err, change: change.kind }, 'could not publish a receiver change');
        }
      });
      bindings = serveBus(deps.bus, pb.ReceiverControlServiceDefinition, {
        getIdentity: () => receiver.identityReply(address()),
        setPairingWindow: (r) => {
          if (r.timeoutS > MAX_PAIRING_WINDOW_S) {
            throw new KilnError('invalid_args', `timeout_s: at most ${MAX_PAIRING_WINDOW_S} (a day), got ${r.timeoutS}`, { field: 'timeout_s', value: r.timeoutS });
          }
          if (r.open) receiver.window.open((r.timeoutS || settings.pairingWindowS) * 1000);
          else receiver.window.close();
          deps.logger.info({ open: r.open, closesAtMs: receiver.window.closesAt }, 'pairing window changed');
          return receiver.identityReply(address());
        },
        approvePeer: async (r) => ({ peer: await receiver.approve(r.peer) }),
        removePeer: async (r) => ({ removed: await receiver.remove(r.peer) }),
        rotateIdentity: async () => {
          await receiver.rotate();
          return receiver.identityReply(address());
        },
      });
      sweeper = setInterval(sweep, settings.sweepIntervalS * 1000);
      sweeper.unref();
      deps.logger.info({ grpc: grpc.address, fingerprint: receiver.identity.fingerprint, dashboardId: receiver.identity.dashboardId }, 'receiver ready');
    },
    async stop() {
      if (sweeper) clearInterval(sweeper);
      disposeAll(bindings);
      bindings = [];
      stopAnnouncing?.();
      stopAnnouncing = undefined;
      receiver.window.close();
      await grpc?.close();
      grpc = undefined;
      await receiver.builds.stop();
    },
    health: () => {
      const lane = receiver.builds.laneStatus();
      return {
        ok: true,
        detail: { grpc: address() || 'off', running: String(lane.running), depth: String(lane.depth), pairing: receiver.window.isOpen ? 'open' : 'closed' },
      };
    },
  };
}

const CHANGE_KIND = {
  pairing_window: pb.ReceiverChange.RECEIVER_CHANGE_PAIRING_WINDOW,
  peer: pb.ReceiverChange.RECEIVER_CHANGE_PEER,
  identity: pb.ReceiverChange.RECEIVER_CHANGE_IDENTITY,
} as const;

function changedEvent(change: ReceiverChange, identity: pb.GetIdentityResponse): pb.ReceiverChanged {
  return {
    change: CHANGE_KIND[change.kind],
    identity,
    ...(change.kind === 'peer' ? { peer: toPeerMessage(change.peer), peerRemoved: change.removed } : { peerRemoved: false }),
  };
}
