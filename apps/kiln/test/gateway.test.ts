import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SIM_BIN } from '@kiln/esphome-sim';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { EPHEMERAL, runKiln, startKiln, tempDataDir, type Running } from './cli-harness.js';

let dataDir: string;
let cleanup: () => Promise<void>;
const running: Running[] = [];
beforeEach(async () => ({ dir: dataDir, cleanup } = await tempDataDir()));
afterEach(async () => {
  for (const r of running.splice(0)) await r.stop();
  await cleanup();
});

type Frame = { message_id?: number | null; event?: string; result?: Record<string, unknown>; error_code?: string; data?: unknown };

describe('the WebSocket API of kiln supervise (embedded default, simulator toolchain)', () => {
  it('installs a device and follows the job to completion over a real socket', async () => {
    const configDir = join(dataDir, 'devices');
    await mkdir(configDir, { recursive: true });
    await writeFile(join(configDir, 'hall.yaml'), 'esphome:\n  name: hall\nesp8266:\n  board: d1_mini\n');
    const kiln = startKiln(['supervise', ...EPHEMERAL, '--config-dir', configDir, '--set', `firmware.toolchain=${SIM_BIN}`], dataDir);
    running.push(kiln);
    await kiln.healthUrl();
    const status = JSON.parse((await runKiln(['status', '--data-dir', dataDir, '--json'])).stdout) as Array<{ services: Array<{ name: string; health: { detail: Record<string, string> } }> }>;
    const url = status[0]!.services.find((s) => s.name === 'gateway')!.health.detail.url!;

    const ws = new WebSocket(`${url.replace('http', 'ws')}/ws`);
    const frames: Frame[] = [];
    const waiters: Array<[(f: Frame) => boolean, (f: Frame) => void]> = [];
    ws.on('message', (d) => {
      const f = JSON.parse(d.toString()) as Frame;
      frames.push(f);
      for (const w of [...waiters]) {
        if (!w[0](f)) continue;
        waiters.splice(waiters.indexOf(w), 1);
        w[1](f);
      }
    });
    const next = (match: (f: Frame) => boolean) => new Promise<Frame>((resolve) => (frames.find(match) ? resolve(frames.find(match)!) : waiters.push([match, resolve])));
    await new Promise((r) => ws.once('open', r));
    expect((await next((f) => f.event === 'server_info')).data).toMatchObject({ kiln_version: expect.any(String) });

    ws.send(JSON.stringify({ command: 'firmware/install', message_id: 1, args: { configuration: 'hall.yaml', port: 'OTA' } }));
    const install = (await next((f) => f.message_id === 1)).result!;
    const upload = (install.upload as { id: string }).id;
    ws.send(JSON.stringify({ command: 'firmware/follow_job', message_id: 2, args: { job_id: upload } }));
    const done = await next((f) => f.message_id === 2 && 'result' in f);
    expect(done.result).toMatchObject({ status: 'completed', type: 'upload', configuration: 'hall.yaml' });
    ws.send(JSON.stringify({ command: 'firmware/get_job_output', message_id: 3, args: { job_id: install.id } }));
    const output = (await next((f) => f.message_id === 3)).result as { lines: string[] };
    expect(output.lines.at(-1)).toMatch(/Successfully compiled program/);
    ws.close();
  });
});
