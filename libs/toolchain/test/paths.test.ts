import { mkdir, copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Toolchain } from '../src/index.js';
import { builtFirmwareDir, remoteBuildsRoot, resolveBuildPaths } from '@kiln/core';
import { FIXTURE_DEVICE, sandbox, SIM_BIN, type Sandbox } from './fixtures/sim.js';

let box: Sandbox | undefined;
afterEach(async () => {
  await box?.dispose();
  box = undefined;
});

describe('resolveBuildPaths', () => {
  it('a remote build lives under .remote_builds/<dashboard_id>/<device>/, one dir per offloader', () => {
    const a = resolveBuildPaths('/cfg', 'kitchen.yaml', { dashboardId: 'aaaa-1' });
    const b = resolveBuildPaths('/cfg', 'kitchen.yaml', { dashboardId: 'bbbb-2' });
    expect(a.dataDir).toBe(join(remoteBuildsRoot('/cfg'), 'aaaa-1', 'kitchen'));
    expect(a.yaml).toBe(join(a.dataDir, 'src', 'kitchen.yaml'));
    expect(a.storage).toBe(join(a.dataDir, 'storage', 'kitchen.yaml.json'));
    expect(b.dataDir).not.toBe(a.dataDir);
    expect(resolveBuildPaths('/cfg', 'kitchen.yaml').dataDir).toBe('/cfg/.esphome');
    expect(a.platformioIni('kitchen')).toBe(join(a.dataDir, 'build', 'kitchen', 'platformio.ini'));
  });

  it('refuses a dashboard id that could leave the remote builds root', () => {
    expect(() => resolveBuildPaths('/cfg', 'kitchen.yaml', { dashboardId: '../x' })).toThrow(/dashboard_id/);
    expect(() => resolveBuildPaths('/cfg', 'kitchen.yaml', { dashboardId: 'a/b' })).toThrow(/dashboard_id/);
  });

  it('the toolchain writes a remote build exactly where the resolver reads it', async () => {
    box = await sandbox();
    const paths = resolveBuildPaths(box.dir, 'device.yaml', { dashboardId: 'offloader-1' });
    await mkdir(paths.sourceDir, { recursive: true });
    await copyFile(fileURLToPath(new URL('./fixtures/device.yaml', import.meta.url)), paths.yaml);
    const proc = await new Toolchain({ command: [SIM_BIN] }).run({ kind: 'compile' }, paths.yaml, { dataDir: paths.dataDir });
    for await (const _line of proc.lines) void _line;
    expect((await proc.exited).exitCode).toBe(0);
    const dir = await builtFirmwareDir(paths);
    expect(dir).toBe(paths.firmwareDir(FIXTURE_DEVICE));
    expect((await readFile(paths.firmwareBin(FIXTURE_DEVICE))).length).toBeGreaterThan(0);
    expect(await readFile(paths.platformioIni(FIXTURE_DEVICE), 'utf8')).toContain(`[env:${FIXTURE_DEVICE}]`);
  });
});
