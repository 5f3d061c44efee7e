import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { loadConfig } from '@kiln/config';
import { remotePb as pb } from '@kiln/contracts';
import { createReceiverClient, previewReceiver } from '@kiln/contracts/grpc';
import { KilnError } from '@kiln/core';
import { formatPin, loadOrCreateIdentity, ReceiverPairings } from '@kiln/remote-identity';
import type { ParsedHostArgs } from '../args.js';

/** How often a pending request is re-checked while waiting for the receiver's approval. */
const POLL_MS = 1_000;

/**
 * `kiln pair <host:port>`: this machine (an offloader) asks a receiver to pair. Preview → show the
 * receiver's pin for an out-of-band comparison → confirm → request (the receiver re-checks the pin)
 * → wait for approval → record the receiver in `<data_dir>/offloader/receivers.json`. Exit 0 once
 * approved.
 */
export async function pair(args: ParsedHostArgs, out: (line: string) => void): Promise<number> {
  const [address, ...extra] = args.positionals;
  if (!address || extra.length > 0) {
    throw new KilnError('invalid_args', `usage: kiln pair <host:port> [--pairing-key-file F] [--yes] [--wait seconds] (got ${JSON.stringify(args.positionals)})`, { field: 'address', value: address ?? null });
  }
  const waitS = args.wait === undefined ? 300 : Number(args.wait);
  if (!Number.isInteger(waitS) || waitS < 0) throw new KilnError('invalid_args', `--wait: must be a whole number of seconds, got ${JSON.stringify(args.wait)}`, { field: '--wait', value: args.wait });
  const config = await loadConfig({ flags: args.flags, ...(args.configFile ? { configFile: args.configFile } : {}) });
  const offloaderDir = join(config.core.dataDir, 'offloader');
  const identity = await loadOrCreateIdentity(join(offloaderDir, 'identity'), hostname(), { logger: { warn: (_details, message) => out(`warning: ${message}`) } });
  const preview = await previewReceiver(address, identity);
  out(`receiver ${preview.identity.name} (${preview.identity.dashboardId}), kiln ${preview.identity.kilnVersion}`);
  out(`receiver pin: ${formatPin(preview.pin)}`);
  out(`this offloader: ${identity.name} (${identity.dashboardId}) pin ${formatPin(identity.fingerprint)}`);
  if (!args.yes) {
    if (!process.stdin.isTTY) throw new KilnError('failed_precondition', 'compare the receiver pin out of band, then run again with --yes (no terminal to ask on)', {});
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    const answer = await rl.question('Does the receiver show exactly this pin? [y/N] ');
    rl.close();
    if (!/^y(es)?$/i.test(answer.trim())) {
      out('not paired');
      return 1;
    }
  }
  const pairingKey = args.pairingKeyFile ? (await readFile(args.pairingKeyFile, 'utf8')).trim() : undefined;
  const client = createReceiverClient({ address, identity, pin: preview.pin });
  try {
    let state = (await client.requestPair(pairingKey ? { pairingKey } : {})).state;
    const deadline = Date.now() + waitS * 1000;
    if (state === pb.PairState.PAIR_STATE_PENDING) out('waiting for approval on the receiver (compare this offloader\'s pin there)…');
    while (state === pb.PairState.PAIR_STATE_PENDING && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      state = (await client.pairStatus()).state;
    }
    if (state === pb.PairState.PAIR_STATE_APPROVED) {
      // Remembered only once approved: the offloader sends builds to these receivers.
      await new ReceiverPairings(offloaderDir).save({
        dashboardId: preview.identity.dashboardId,
        name: preview.identity.name,
        address,
        pin: preview.pin,
        enabled: true,
        pairedAtMs: Date.now(),
      });
      out(`paired: approved by ${preview.identity.name}`);
      return 0;
    }
    out(state === pb.PairState.PAIR_STATE_PENDING ? 'still pending: approve it on the receiver, then run kiln pair again to record it' : 'not paired: the receiver removed the request');
    return 1;
  } finally {
    client.close();
  }
}
