import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SIM_BIN } from '@kiln/esphome-sim';
import { GatewayClient, type Frame } from '@kiln/gateway';
import { describe, expect, it } from 'vitest';
import { EPHEMERAL, kilnPerTest, runKiln } from './cli-harness.js';

const host = kilnPerTest();

const result = <T = Record<string, unknown>>(f: Frame): T => {
  if ('error_code' in f) throw new Error(`unexpected error frame ${JSON.stringify(f)}`);
  return f.result as T;
};

async function supervise(configDir: string, extra: string[] = []): Promise<{ api: string; http: string }> {
  const kiln = host.start(['supervise', ...EPHEMERAL, '--config-dir', configDir, '--set', `firmware.toolchain=${SIM_BIN}`, ...extra], {
    ESPHOME_SIM_KNOBS_JSON: JSON.stringify({ default: { compileMs: 150, uploadMs: 80, steps: 5 } }),
  });
  await kiln.healthUrl();
  const status = JSON.parse((await runKiln(['status', '--data-dir', host.dataDir, '--json'])).stdout) as Array<{ services: Array<{ name: string; health: { detail: Record<string, string> } }> }>;
  const http = status[0]!.services.find((s) => s.name === 'gateway')!.health.detail.url!;
  return { api: `${http.replace('http', 'ws')}/ws`, http };
}

describe('the WebSocket API of kiln supervise (embedded default, simulator toolchain)', () => {
  it('serves every command: devices, firmware lanes, streams, artifacts', async () => {
    const configDir = join(host.dataDir, 'devices');
    await mkdir(configDir, { recursive: true });
    await writeFile(join(configDir, 'hall.yaml'), 'esphome:\n  name: hall\nesp8266:\n  board: d1_mini\n');
    const { api, http } = await supervise(configDir);
    const c = await GatewayClient.connect(api);
    expect((await c.next((f) => f.event === 'server_info')).data).toMatchObject({ kiln_version: expect.any(String) });
    expect(result(await c.call('config/version'))).toMatchObject({ api: 'esphome-device-builder' });
    expect(result(await c.call('auth/login', { password: 'x' }))).toEqual({ authenticated: true, required: false });

    const events = c.send('subscribe_events');
    const jobsFeed = c.send('firmware/follow_jobs');
    await c.next((f) => f.message_id === events && f.event === 'initial_state');
    await c.next((f) => f.message_id === jobsFeed && f.event === 'initial_state');

    // devices/*
    expect(result<{ configured: unknown[] }>(await c.call('devices/list')).configured).toHaveLength(1);
    const porch = result(await c.call('devices/create', { name: 'Porch', platform: 'esp32', board_id: 'esp32dev' }));
    expect(porch).toMatchObject({ configuration: 'porch.yaml' });
    await c.next((f) => f.message_id === events && f.event === 'device_added');
    const yaml = result<{ content: string }>(await c.call('devices/get_config', { configuration: 'porch.yaml' })).content;
    expect(result(await c.call('devices/update_config', { configuration: 'porch.yaml', content: `${yaml}\n# edited\n` }))).toMatchObject({ name: 'porch' });

    // firmware/*: install, bulk, follow, output, binaries, download
    const install = result(await c.call('firmware/install', { configuration: 'hall.yaml', port: 'OTA' }));
    const upload = (install.upload as { id: string }).id;
    expect(result(await c.call('firmware/follow_job', { job_id: upload }))).toMatchObject({ status: 'completed' });
    expect(result<{ lines: string[] }>(await c.call('firmware/get_job_output', { job_id: String(install.id) })).lines.at(-1)).toMatch(/Successfully compiled/);
    expect(result(await c.call('firmware/get_job', { job_id: upload }))).toMatchObject({ type: 'upload', output: expect.any(Array) });
    const bulk = result<Array<{ id: string }>>(await c.call('firmware/install_bulk', { configurations: ['hall.yaml', 'porch.yaml'], port: 'OTA' }));
    expect(bulk).toHaveLength(4);
    const compiles = result<Array<{ id: string }>>(await c.call('firmware/compile_bulk', { configurations: ['porch.yaml'] }));
    expect(result(await c.call('firmware/follow_job', { job_id: compiles[0]!.id }))).toMatchObject({ status: 'completed' });
    expect(result(await c.call('firmware/follow_job', { job_id: bulk[1]!.id }))).toMatchObject({ status: 'completed' });
    expect(result(await c.call('firmware/queue_status'))).toMatchObject({ compile: { slots: 1 }, upload: { slots: 1 } });
    const binaries = result<{ files: Array<{ file: string }> }>(await c.call('firmware/get_binaries', { configuration: 'hall.yaml' }));
    expect(binaries.files.map((f) => f.file)).toContain('firmware.factory.bin');
    const token = result<{ url: string }>(await c.call('firmware/download_token', { configuration: 'hall.yaml', file: 'firmware.factory.bin' }));
    const download = Buffer.from(await (await fetch(`${http}${token.url}`)).arrayBuffer());
    expect(download.equals(await readFile(join(configDir, '.esphome/build/hall/.pioenvs/hall/firmware.factory.bin')))).toBe(true);

    // cancel, clean, rename, reset, clear
    const queued = result(await c.call('firmware/compile', { configuration: 'hall.yaml' }));
    expect(result(await c.call('firmware/cancel', { job_id: String(queued.id) }))).toMatchObject({ id: queued.id });
    expect(result(await c.call('firmware/follow_job', { job_id: String(queued.id) }))).toMatchObject({ status: 'cancelled' });
    const clean = result(await c.call('firmware/clean', { configuration: 'hall.yaml' }));
    expect(result(await c.call('firmware/follow_job', { job_id: String(clean.id) }))).toMatchObject({ status: 'completed', type: 'clean' });
    const rename = result(await c.call('firmware/rename', { configuration: 'porch.yaml', new_name: 'front-porch' }));
    expect(result(await c.call('firmware/follow_job', { job_id: String(rename.id) }))).toMatchObject({ status: 'completed', type: 'rename' });
    const reset = result(await c.call('firmware/reset_build_env'));
    expect(result(await c.call('firmware/follow_job', { job_id: String(reset.id) }))).toMatchObject({ status: 'completed' });
    expect(result<{ removed: string[] }>(await c.call('firmware/clear')).removed.length).toBeGreaterThan(0);
    expect(result(await c.call('devices/delete', { configuration: 'front-porch.yaml' }))).toMatchObject({ deleted: true });

    // The streams saw it all, in order, and stop_stream ends one.
    const lifecycle = c.frames.filter((f) => f.message_id === jobsFeed && f.event === 'job_completed');
    expect(lifecycle.length).toBeGreaterThan(5);
    expect(c.frames.some((f) => f.message_id === events && f.event === 'device_removed')).toBe(true);
    expect(result(await c.call('stop_stream', { message_id: jobsFeed }))).toEqual({ stopped: true });
    c.close();
  });

  it('with --password the API needs a login', async () => {
    const configDir = join(host.dataDir, 'devices');
    await mkdir(configDir, { recursive: true });
    const { api } = await supervise(configDir, ['--password', 'long enough secret']);
    const c = await GatewayClient.connect(api);
    expect((await c.call('devices/list')).error_code).toBe('not_authenticated');
    expect(result(await c.call('auth/login', { password: 'long enough secret' }))).toMatchObject({ authenticated: true });
    expect(result(await c.call('devices/list'))).toEqual({ configured: [], importable: [] });
    c.close();
  });
});
