import type { remotePb as pb } from '@kiln/contracts';
import { splitAddress, type ReceiverPairing } from '@kiln/remote-identity/store';

/** A receivers.json row as the offloader commands answer it (`eligible`: the compile lane can use it now). */
export function toPairing(row: ReceiverPairing, eligible: boolean): pb.OffloaderPairing {
  const { host, port } = splitAddress(row.address);
  return { dashboardId: row.dashboardId, name: row.name, hostname: host, port, pinSha256: row.pin, enabled: row.enabled, pairedAtMs: row.pairedAtMs, eligible };
}
