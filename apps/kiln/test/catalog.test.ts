import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GatewayClient } from '@kiln/gateway';
import { describe, expect, it } from 'vitest';
import { EPHEMERAL, kilnPerTest, runKiln } from './cli-harness.js';

const UPSTREAM_TREE = fileURLToPath(new URL('../../../../shared/data/esphome-catalog/definitions', import.meta.url));
const host = kilnPerTest();

describe('kiln catalog import', () => {
  it('imports the upstream tree with progress, and kiln supervise then serves it over the API', async () => {
    if (!existsSync(UPSTREAM_TREE)) throw new Error(`upstream catalog data not found at ${UPSTREAM_TREE}`);
    const imported = await runKiln(['catalog', 'import', '--from', UPSTREAM_TREE, '--data-dir', host.dataDir], { HOME: host.dataDir });
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toMatch(/^imported 936 components, 1084 automations, 1040 boards \(\d+\.\d MB of bodies\) in \d+\.\d s into .*catalog\/tree-/m);
    // Not a terminal: one progress line per quarter of each section.
    expect(imported.stderr).toContain('components: 0/936 (0%)');
    expect(imported.stderr).toContain('boards: 1040/1040 (100%)');

    const kiln = host.start(['supervise', ...EPHEMERAL]);
    await kiln.healthUrl();
    const status = JSON.parse((await runKiln(['status', '--data-dir', host.dataDir, '--json'])).stdout) as Array<{ services: Array<{ name: string; health: { detail: Record<string, string> } }> }>;
    const services = status[0]!.services;
    expect(services.find((s) => s.name === 'catalog')!.health.detail['root']).toMatch(/catalog\/tree-/);
    const http = services.find((s) => s.name === 'gateway')!.health.detail['url']!;
    const c = await GatewayClient.connect(`${http.replace('http', 'ws')}/ws`);
    try {
      const frame = await c.call('components/get_components', { category: 'sensor', limit: 1 });
      expect(frame.result).toMatchObject({ total: 285 });
      const board = await c.call('boards/get_board', { board_id: 'apollo-esk-1' });
      expect(board.result).toMatchObject({ id: 'apollo-esk-1', requires_wifi: false });
    } finally {
      c.close();
    }
  }, 120_000);

  it('refuses bad invocations with a clear message and leaves no catalog behind', async () => {
    const missing = await runKiln(['catalog', 'import', '--data-dir', host.dataDir]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--from is required/);
    const nowhere = await runKiln(['catalog', 'import', '--from', join(host.dataDir, 'nope'), '--data-dir', host.dataDir]);
    expect(nowhere.code).toBe(1);
    expect(nowhere.stderr).toMatch(/--from .*nope: no such file or directory/);
    const sub = await runKiln(['catalog', 'export']);
    expect(sub.code).toBe(2);
    expect(sub.stderr).toMatch(/usage: kiln catalog import .*\(got "export"\)/);
    expect(existsSync(join(host.dataDir, 'catalog', 'current'))).toBe(false);
  });
});
