import { timingSafeEqual, createHash } from 'node:crypto';
import { readFile, rm, stat } from 'node:fs/promises';
import { KilnError, type Clock } from '@kiln/core';
import { warnIfExposed, type KeyFileWarner } from '@kiln/remote-identity';

/**
 * When unknown offloaders may ask to pair. Closed by default; opened by the operator for a bounded
 * time and closed by itself after it.
 */
export class PairingWindow {
  private closesAtMs = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly clock: Clock, private readonly onChange: () => void = () => undefined) {}

  get isOpen(): boolean {
    return this.closesAtMs > this.clock.now();
  }

  /** 0 when closed. */
  get closesAt(): number {
    return this.isOpen ? this.closesAtMs : 0;
  }

  open(durationMs: number): void {
    this.close();
    this.closesAtMs = this.clock.now() + durationMs;
    this.timer = setTimeout(() => this.close(), durationMs);
    this.timer.unref();
    this.onChange();
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const wasOpen = this.closesAtMs !== 0;
    this.closesAtMs = 0;
    if (wasOpen) this.onChange();
  }
}

/**
 * A headless receiver's one-shot pairing key, read from a file. Accepted once, within `ttlMs` of the
 * file's last change; the file is removed when the key is used, so a replay finds nothing to match.
 */
export class PairingKey {
  private used = false;
  /** The file version (mode and mtime) whose mode was checked last: every preview reads the file, one warning is enough. */
  private checkedFor = '';

  constructor(
    private readonly file: string,
    private readonly ttlMs: number,
    private readonly clock: Clock,
    private readonly logger?: KeyFileWarner,
  ) {}

  /** Armed: a key file exists, is fresh, and was not used. */
  async armed(): Promise<boolean> {
    return (await this.read()) !== undefined;
  }

  /** Refuses like a spent key when none is armed (without spending one). */
  async assertArmed(): Promise<void> {
    if (!(await this.armed())) throw notArmed();
  }

  /** Consume the key if `offered` matches (constant-time); a mismatch, replay or expired key refuses. */
  async consume(offered: string): Promise<void> {
    const key = await this.read();
    // Re-checked after the read: two concurrent requests must not both spend one key.
    if (key === undefined || this.used) throw notArmed();
    // Hash both sides so the comparison is constant-time whatever the lengths.
    const a = createHash('sha256').update(offered).digest();
    const b = createHash('sha256').update(key).digest();
    if (!timingSafeEqual(a, b)) throw new KilnError('permission_denied', 'pairing key refused: it does not match', {});
    this.used = true;
    await rm(this.file, { force: true });
  }

  private async read(): Promise<string | undefined> {
    if (this.used || this.file === '') return undefined;
    try {
      const [info, text] = await Promise.all([stat(this.file), readFile(this.file, 'utf8')]);
      if (this.checkedFor !== `${info.mode}:${info.mtimeMs}`) {
        this.checkedFor = `${info.mode}:${info.mtimeMs}`;
        await warnIfExposed(this.file, 'pairing key file', this.logger, info.mode);
      }
      const key = text.trim();
      if (key.length < 16) return undefined;
      return this.clock.now() - info.mtimeMs > this.ttlMs ? undefined : key;
    } catch {
      return undefined;
    }
  }
}

function notArmed(): KilnError {
  return new KilnError('permission_denied', 'pairing key refused: no pairing key is armed on this receiver (used, expired or never set)', {});
}

/**
 * Certificates offered in a pairing request over a connection whose handshake proved no key: TLS
 * verifies only certificates the receiver already trusts, so a stranger's first request shows a PEM
 * anyone could copy. Each offered certificate becomes a TLS trust anchor; an offloader that then
 * reconnects and completes the handshake with it holds its key, and only then is the request filed.
 * Trusting a certificate this way grants nothing else (it is no peer). Bounded, oldest dropped first:
 * an open window must not let strangers grow the server's anchor list without bound.
 */
export class UnprovenCertificates {
  /** By fingerprint, oldest first. */
  private readonly certs = new Map<string, string>();

  constructor(private readonly max: number) {}

  add(fingerprint: string, certPem: string): void {
    this.certs.delete(fingerprint);
    this.certs.set(fingerprint, certPem);
    for (const oldest of this.certs.keys()) {
      if (this.certs.size <= this.max) break;
      this.certs.delete(oldest);
    }
  }

  /** Proven (or filed): no longer needed as a separate anchor. */
  delete(fingerprint: string): boolean {
    return this.certs.delete(fingerprint);
  }

  list(): string[] {
    return [...this.certs.values()];
  }
}
