import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/** Sampling period of the delay histogram; each sample is period + delay, so the period is subtracted. */
const RESOLUTION_MS = 20;

/** Process-wide figures shared by every co-hosted service's heartbeat. */
export class ProcessMetrics {
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });

  constructor() {
    this.loopDelay.enable();
  }

  /**
   * p99 event-loop delay (ms) over the current window. Only the periodic heartbeat starts a new
   * window (`reset`): a status request or a state change must not shorten the heartbeat's window.
   */
  sample(reset = false): { eventLoopDelayP99Ms: number; heapUsedBytes: number; rssBytes: number } {
    const p99 = this.loopDelay.count > 0 ? Math.max(0, this.loopDelay.percentile(99) / 1e6 - RESOLUTION_MS) : 0;
    if (reset) this.loopDelay.reset();
    const memory = process.memoryUsage();
    return { eventLoopDelayP99Ms: Math.round(p99 * 100) / 100, heapUsedBytes: memory.heapUsed, rssBytes: memory.rss };
  }

  close(): void {
    this.loopDelay.disable();
  }
}
