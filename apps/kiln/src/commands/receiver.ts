import { connectNatsBus } from '@kiln/bus';
import { loadConfig } from '@kiln/config';
import { busClient, remotePb as pb } from '@kiln/contracts';
import { KilnError } from '@kiln/core';
import { formatPin } from '@kiln/remote-identity';
import type { ParsedHostArgs } from '../args.js';

const ACTIONS = ['identity', 'open', 'close', 'approve', 'remove', 'rotate'] as const;

/**
 * `kiln receiver <action>`: operate a running receiver over the bus (NATS), the same RPCs the
 * gateway uses. A receiver on the in-process bus is operated through its gateway instead, or
 * paired headless with a one-shot key file.
 */
export async function receiverControl(args: ParsedHostArgs, out: (line: string) => void): Promise<number> {
  const [action, target, ...extra] = args.positionals;
  if (!ACTIONS.includes(action as (typeof ACTIONS)[number]) || extra.length > 0 || ((action === 'approve' || action === 'remove') && !target)) {
    throw new KilnError('invalid_args', `usage: kiln receiver <identity|open [seconds]|close|approve <peer>|remove <peer>|rotate> --nats URL (got ${JSON.stringify(args.positionals)})`, {
      field: 'action',
      value: action ?? null,
    });
  }
  const config = await loadConfig({ flags: args.flags, ...(args.configFile ? { configFile: args.configFile } : {}) });
  if (!config.core.nats) throw new KilnError('invalid_args', 'kiln receiver <action> needs --nats URL (the bus the receiver is on)', { field: 'nats', value: null });
  const bus = await connectNatsBus({ servers: config.core.nats, ...(config.core.natsPrefix ? { prefix: config.core.natsPrefix } : {}) });
  const receiver = busClient(bus, pb.ReceiverControlServiceDefinition);
  try {
    switch (action) {
      case 'approve': {
        const { peer } = await receiver.approvePeer({ peer: target! });
        out(`approved ${peer?.name} (${peer?.dashboardId})`);
        return 0;
      }
      case 'remove':
        out((await receiver.removePeer({ peer: target! })).removed ? `removed ${target}` : `no peer ${target}`);
        return 0;
      case 'open':
      case 'close': {
        const seconds = target === undefined ? 0 : Number(target);
        if (!Number.isInteger(seconds) || seconds < 0) throw new KilnError('invalid_args', `seconds: must be a whole number, got ${JSON.stringify(target)}`, { field: 'seconds', value: target });
        printIdentity(await receiver.setPairingWindow({ open: action === 'open', timeoutS: seconds }), out, args.json);
        return 0;
      }
      case 'rotate':
        printIdentity(await receiver.rotateIdentity({}), out, args.json);
        return 0;
      default:
        printIdentity(await receiver.getIdentity({}), out, args.json);
        return 0;
    }
  } finally {
    await bus.close();
  }
}

function printIdentity(id: pb.GetIdentityResponse, out: (line: string) => void, json: boolean): void {
  if (json) return out(JSON.stringify(id));
  out(`receiver ${id.name} (${id.dashboardId}) on ${id.address}`);
  out(`pin: ${formatPin(id.fingerprint)}`);
  out(`pairing window: ${id.pairingOpen ? `open until ${new Date(Number(id.pairingClosesAtMs)).toISOString()}` : 'closed'}`);
  for (const peer of id.peers) {
    const state = peer.state === pb.PairState.PAIR_STATE_APPROVED ? 'approved' : 'PENDING';
    out(`  ${state.padEnd(8)} ${peer.name} ${peer.dashboardId} pin ${formatPin(peer.fingerprint)}`);
  }
}
