import { join } from 'node:path';
import { KilnError, readTextIfExists, writeFileAtomic } from '@kiln/core';

/** A receiver this offloader paired with: where it is and the certificate fingerprint it must present. */
export interface ReceiverPairing {
  /** The receiver's dashboard id (stable across its key rotations). */
  dashboardId: string;
  name: string;
  /** host:port of its gRPC endpoint. */
  address: string;
  /** The confirmed SHA-256 pin. */
  pin: string;
  /** Whether builds may be sent to it (a paused pairing stays paired). */
  enabled: boolean;
  pairedAtMs: number;
}

/**
 * The offloader's receivers, `<dir>/receivers.json` (0600), written atomically and in order: the file
 * is the truth, memory follows it. Keyed by the receiver's dashboard id, so re-pairing after a
 * rotation or an address change replaces the row.
 */
export class ReceiverPairings {
  private readonly file: string;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(dir: string) {
    this.file = join(dir, 'receivers.json');
  }

  async list(): Promise<ReceiverPairing[]> {
    const text = await readTextIfExists(this.file);
    if (text === undefined) return [];
    try {
      const rows = JSON.parse(text) as ReceiverPairing[];
      if (!Array.isArray(rows)) throw new Error('not a list');
      return rows;
    } catch (err) {
      throw new KilnError('internal_error', `receiver pairings ${this.file} are unreadable (${(err as Error).message})`, { file: this.file });
    }
  }

  save(pairing: ReceiverPairing): Promise<void> {
    return this.change((rows) => [...rows.filter((r) => r.dashboardId !== pairing.dashboardId), pairing]);
  }

  /** Change the row with this pin in place (in order with every other change); undefined: no such row. */
  async update(pin: string, apply: (row: ReceiverPairing) => ReceiverPairing): Promise<ReceiverPairing | undefined> {
    let updated: ReceiverPairing | undefined;
    await this.change((rows) => rows.map((r) => (r.pin === pin ? (updated = apply(r)) : r)));
    return updated;
  }

  /** By dashboard id, pin or address; true when a row was removed. */
  async remove(ref: string): Promise<boolean> {
    let removed = false;
    await this.change((rows) => {
      const kept = rows.filter((r) => r.dashboardId !== ref && r.pin !== ref && r.address !== ref);
      removed = kept.length !== rows.length;
      return kept;
    });
    return removed;
  }

  private change(apply: (rows: ReceiverPairing[]) => ReceiverPairing[]): Promise<void> {
    const run = this.tail.then(async () => {
      const next = apply(await this.list());
      await writeFileAtomic(this.file, `${JSON.stringify(next, null, 2)}\n`, 0o600);
    });
    this.tail = run.catch(() => undefined);
    return run;
  }
}

/** `host:port` (an IPv6 host in brackets) → its parts; anything else → invalid_args naming it. */
export function splitAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new KilnError('invalid_args', `address: must be host:port, got ${JSON.stringify(address)}`, { field: 'address', value: address });
  }
  return { host, port };
}

/** The `host:port` form stored in a pairing (an IPv6 host in brackets). */
export function joinAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
