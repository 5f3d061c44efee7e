import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { encode, logStorePb, systemPb } from '../src/index.js';

const generator = fileURLToPath(new URL('../../../tools/proto/generate.mjs', import.meta.url));

describe('generated contracts', () => {
  it('are exactly what buf + ts-proto generate from proto/ (stale code fails here)', async () => {
    const result = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile(process.execPath, [generator, '--check'], { timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
      );
    });
    expect(result.out).toMatch(/contracts up to date/);
    expect(result.code).toBe(0);
  });

  it('round-trip through the wire format', () => {
    const health: systemPb.ServiceHealth = {
      service: 'logstore',
      state: systemPb.ServiceState.SERVICE_STATE_RUNNING,
      restarts: 2,
      uptimeMs: 1234,
      lastError: 'boom',
      eventLoopDelayP99Ms: 1.5,
      heapUsedBytes: 10,
      rssBytes: 20,
      pid: 7,
      host: 'h',
      detail: { openLogs: '3' },
      sentAtMs: 99,
    };
    expect(systemPb.ServiceHealth.decode(encode(systemPb.ServiceHealth, health))).toEqual(health);
    const follow: logStorePb.FollowResponse = { event: { $case: 'lines', value: { jobId: 'j', firstSeq: 5, lines: ['a', 'b'] } } };
    expect(logStorePb.FollowResponse.decode(encode(logStorePb.FollowResponse, follow))).toEqual(follow);
  });
});
