import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { KilnError } from '@kiln/core';

/** A login token lives this long; auth/refresh slides it forward. */
export const SESSION_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * Optional password login for the WebSocket API. With no password configured every connection is
 * trusted (the gateway listens on loopback by default). Sessions are in memory: a restart logs
 * everyone out, which is the safe direction.
 */
export class Authenticator {
  private readonly sessions = new Map<string, number>();
  private readonly digest: Buffer | undefined;

  constructor(
    private readonly username: string,
    password: string | undefined,
    private readonly now: () => number = Date.now,
  ) {
    this.digest = password ? sha256(password) : undefined;
  }

  get required(): boolean {
    return this.digest !== undefined;
  }

  /** Checks the password in constant time (hashes first, so lengths leak nothing) and opens a session. */
  login(username: unknown, password: unknown): { token: string; expires_in: number } {
    const ok =
      this.digest !== undefined &&
      typeof password === 'string' &&
      typeof username === 'string' &&
      timingSafeEqual(sha256(password), this.digest) &&
      timingSafeEqual(sha256(username), sha256(this.username));
    if (!ok) throw new KilnError('not_authenticated', 'wrong username or password', {});
    return this.open();
  }

  /** A token from an earlier login (another connection, a page reload). */
  resume(token: unknown): { token: string; expires_in: number } {
    if (typeof token !== 'string' || !this.valid(token)) throw new KilnError('not_authenticated', 'token is unknown or expired; log in again', {});
    return this.refresh(token);
  }

  refresh(token: string): { token: string; expires_in: number } {
    if (!this.valid(token)) throw new KilnError('not_authenticated', 'session expired; log in again', {});
    this.sessions.set(token, this.now() + SESSION_TTL_MS);
    return { token, expires_in: SESSION_TTL_MS / 1000 };
  }

  logout(token: string | undefined): void {
    if (token) this.sessions.delete(token);
  }

  valid(token: string): boolean {
    const expires = this.sessions.get(token);
    if (expires === undefined) return false;
    if (expires <= this.now()) {
      this.sessions.delete(token);
      return false;
    }
    return true;
  }

  private open(): { token: string; expires_in: number } {
    const token = randomBytes(32).toString('base64url');
    this.sessions.set(token, this.now() + SESSION_TTL_MS);
    return { token, expires_in: SESSION_TTL_MS / 1000 };
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
