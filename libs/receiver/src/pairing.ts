import { timingSafeEqual, createHash } from 'node:crypto';
import { readFile, rm, stat } from 'node:fs/promises';
import { KilnError, type Clock } from '@kiln/core';

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

  constructor(private readonly file: string, private readonly ttlMs: number, private readonly clock: Clock) {}

  /** Armed: a key file exists, is fresh, and was not used. */
  async armed(): Promise<boolean> {
    return (await this.read()) !== undefined;
  }

  /** Consume the key if `offered` matches (constant-time); a mismatch, replay or expired key refuses. */
  async consume(offered: string): Promise<void> {
    const key = await this.read();
    // Re-checked after the read: two concurrent requests must not both spend one key.
    if (key === undefined || this.used) {
      throw new KilnError('permission_denied', 'pairing key refused: no pairing key is armed on this receiver (used, expired or never set)', {});
    }
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
      const key = text.trim();
      if (key.length < 16) return undefined;
      return this.clock.now() - info.mtimeMs > this.ttlMs ? undefined : key;
    } catch {
      return undefined;
    }
  }
}
