import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Client, startStack, type Stack } from './harness.js';

let stack: Stack | undefined;
let client: Client | undefined;
afterEach(async () => {
  client?.close();
  await stack?.close();
  stack = client = undefined;
});

describe('devices/delete and the firmware lanes', () => {
  it('does not remove the build dir under a running compile of the device: it cancels the compile and waits until its process is gone', async () => {
    // The compile ignores SIGTERM: after the cancel it runs on until SIGKILL, killGraceMs later.
    stack = await startStack({ knobs: { default: { compileMs: 200, uploadMs: 100, steps: 10 }, devices: { kitchen: { compileMs: 30_000, ignoreSigterm: true } } }, settings: { 'firmware.killGraceMs': '800' } });
    const buildDir = join(stack.configDir, '.esphome/build/kitchen');
    const otherBuild = join(stack.configDir, '.esphome/build/porch/firmware.bin');
    await mkdir(join(otherBuild, '..'), { recursive: true });
    await writeFile(otherBuild, 'bin');
    client = await Client.connect(stack.wsUrl);
    const compile = (await client.call('firmware/compile', { configuration: 'kitchen.yaml' })).result as { id: string };
    for (let i = 0; i < 500 && (((await client.call('firmware/get_job', { job_id: compile.id })).result as { status: string }).status !== 'running' || !existsSync(buildDir)); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(existsSync(buildDir)).toBe(true);

    expect((await client.call('devices/delete', { configuration: 'kitchen.yaml' })).result).toEqual({ configuration: 'kitchen.yaml', deleted: true });
    // By the time the delete answers, the compile has ended (it was not left writing into a removed dir)...
    const job = (await client.call('firmware/get_job', { job_id: compile.id })).result as { status: string; error: string };
    expect(job).toMatchObject({ status: 'cancelled', error: 'cancelled: the device was deleted' });
    // ...and then its outputs went; another device's build stays.
    expect(existsSync(buildDir)).toBe(false);
    expect(existsSync(join(stack.configDir, '.esphome/storage/kitchen.yaml.json'))).toBe(false);
    expect(existsSync(join(stack.configDir, 'kitchen.yaml'))).toBe(false);
    expect(existsSync(otherBuild)).toBe(true);
  });
});
