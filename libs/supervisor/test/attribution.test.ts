import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const host = fileURLToPath(new URL('./fixtures/attribution-host.mjs', import.meta.url));

function runHost(mode: string): Promise<{ code: number | null; events: Array<Record<string, unknown>> }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [host, mode], { timeout: 20_000 }, (error, stdout) => {
      const code = error ? ((error as { code?: number }).code ?? null) : 0;
      resolve({ code: typeof code === 'number' ? code : null, events: stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) });
    });
  });
}

describe('failure attribution in a real process', () => {
  it('a timer throw, an unhandled rejection and a throwing bus handler each restart only their own service', async () => {
    const { code, events } = await runHost('recover');
    expect(code).toBe(0);
    const crashed = events.filter((e) => e.type === 'crashed').map((e) => [e.service, e.message]);
    expect(crashed).toEqual(
      expect.arrayContaining([
        ['thrower', 'thrown in a timer'],
        ['rejecter', 'rejected and never handled'],
        ['listener', 'handler threw'],
      ]),
    );
    expect(crashed).toHaveLength(3);
    expect(events.filter((e) => e.type === 'started' && e.service === 'steady')).toHaveLength(1);
    expect(events.some((e) => e.type === 'unattributed')).toBe(false);
    const settled = events.find((e) => e.type === 'settled') as { services: Array<[string, string, number]> };
    expect(settled.services).toEqual([
      ['thrower', 'running', 1],
      ['rejecter', 'running', 1],
      ['listener', 'running', 1],
      ['steady', 'running', 0],
    ]);
  });

  it('a service that keeps crashing past the restart intensity makes the process exit non-zero', async () => {
    const { code, events } = await runHost('intensity');
    expect(code).toBe(1);
    expect(events.filter((e) => e.type === 'crashed' && e.service === 'doomed')).toHaveLength(3);
    expect(events.at(-1)).toMatchObject({ type: 'fatal', message: 'always' });
  });
});
