import type { SupervisorSettings } from './settings.js';

type Policy = Pick<SupervisorSettings, 'restartInitialMs' | 'restartMaxMs' | 'stableMs' | 'maxRestarts' | 'restartWindowMs'>;

/**
 * Restart bookkeeping for one service: capped exponential delay that resets after a stable run,
 * and the intensity limit (too many restarts in a window → give up).
 */
export class RestartBackoff {
  private consecutive = 0;
  private readonly recent: number[] = [];

  constructor(private readonly policy: Policy) {}

  /** Record a crash at `now` after a run that started at `startedAt`; returns the delay, or undefined when the limit is hit. */
  next(now: number, startedAt: number | undefined): number | undefined {
    if (startedAt !== undefined && now - startedAt >= this.policy.stableMs) this.consecutive = 0;
    this.recent.push(now);
    while (this.recent.length > 0 && now - this.recent[0]! > this.policy.restartWindowMs) this.recent.shift();
    if (this.recent.length > this.policy.maxRestarts) return undefined;
    const delay = Math.min(this.policy.restartInitialMs * 2 ** this.consecutive, this.policy.restartMaxMs);
    this.consecutive += 1;
    return delay;
  }

  /** An operator restart is not a crash: start the ladder again. */
  reset(): void {
    this.consecutive = 0;
  }

  get restartsInWindow(): number {
    return this.recent.length;
  }
}
