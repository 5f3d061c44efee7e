import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SIM_BIN } from '@kiln/esphome-sim';
import { GatewayClient } from '@kiln/gateway';
import { describe, expect, it } from 'vitest';
import { EPHEMERAL, killStrays, kilnPerTest, records, runKiln, type Running } from './cli-harness.js';

const host = kilnPerTest(killStrays);

/** A host whose firmware service is slow to stop: its job's toolchain ignores SIGTERM for 30 s. */
async function hostWithStuckJob(extra: string[]): Promise<Running> {
  const configDir = join(host.dataDir, 'devices');
  await mkdir(configDir, { recursive: true });
  await writeFile(join(configDir, 'stuck.yaml'), 'esphome:\n  name: stuck\nesp32:\n  board: esp32dev\n');
  const kiln = host.start(['supervise', ...EPHEMERAL, '--config-dir', configDir, '--set', `firmware.toolchain=${SIM_BIN}`, '--set', 'firmware.killGraceMs=30000', ...extra], {
    ESPHOME_SIM_KNOBS_JSON: JSON.stringify({ default: { hang: 'compile', ignoreSigterm: true } }),
  });
  await kiln.healthUrl();
  const status = JSON.parse((await runKiln(['status', '--data-dir', host.dataDir, '--json'])).stdout) as Array<{ services: Array<{ name: string; health: { detail: Record<string, string> } }> }>;
  const url = status[0]!.services.find((s) => s.name === 'gateway')!.health.detail.url!;
  const client = await GatewayClient.connect(`${url.replace('http', 'ws')}/ws`);
  const job = (await client.call('firmware/compile', { configuration: 'stuck.yaml' })).result as { id: string };
  const follow = client.send('firmware/follow_job', { job_id: job.id });
  await client.next((f) => f.message_id === follow && f.event === 'job_output');
  client.close();
  return kiln;
}

describe('stopping', () => {
  it('a second SIGTERM during a slow graceful stop exits at once', async () => {
    const kiln = await hostWithStuckJob([]);
    kiln.child.kill('SIGTERM');
    for (let i = 0; i < 100 && !kiln.output().includes('"msg":"stopping"'); i++) await new Promise((r) => setTimeout(r, 20));
    kiln.child.kill('SIGTERM');
    const { code } = await kiln.exited;
    expect(code).toBe(130);
    expect(records(kiln.output()).some((l) => l.msg === 'second signal: exiting now')).toBe(true);
  });

  it('a graceful stop that outlasts supervisor.shutdownTimeoutMs ends in a hard exit', async () => {
    const kiln = await hostWithStuckJob(['--set', 'supervisor.shutdownTimeoutMs=1000']);
    kiln.child.kill('SIGTERM');
    const { code } = await kiln.exited;
    expect(code).toBe(1);
    expect(records(kiln.output()).some((l) => l.msg === 'graceful stop took too long: exiting now')).toBe(true);
  });
});
