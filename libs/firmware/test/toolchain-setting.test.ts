import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { createInProcessBus } from '@kiln/bus';
import { loadConfig } from '@kiln/config';
import { firmwarePb as pb, firmwareSubjects, type ServiceDeps } from '@kiln/contracts';
import { SIM_BIN } from '@kiln/esphome-sim';
import { createRootLogger } from '@kiln/logging';
import { createLogStoreService } from '@kiln/logstore';
import { toolchainCommand } from '@kiln/toolchain';
import { afterEach, describe, expect, it } from 'vitest';
import { createFirmwareService } from '../src/index.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('the firmware.toolchain setting', () => {
  it('a relative path with a slash is resolved against the directory Kiln started in, not the config dir jobs run in', async () => {
    const root = await mkdtemp(join(tmpdir(), 'kiln-toolchain-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const configDir = join(root, 'config');
    await mkdir(configDir, { recursive: true });
    await writeFile(join(configDir, 'hall.yaml'), 'esphome:\n  name: hall\nesp32:\n  board: esp32dev\n');
    const knobs = join(root, 'knobs.json');
    await writeFile(knobs, JSON.stringify({ default: { compileMs: 50, steps: 2 } }));
    process.env['ESPHOME_SIM_KNOBS'] = knobs;
    // Started two levels above the simulator, named as `tools/esphome-sim/bin/esphome` is from the repository root.
    const startDir = dirname(dirname(dirname(SIM_BIN)));
    const setting = relative(startDir, SIM_BIN);
    expect(setting).toBe(join('esphome-sim', 'bin', 'esphome'));
    const config = await loadConfig({
      cwd: startDir,
      env: { HOME: '/nonexistent' },
      flags: [
        { path: 'dataDir', value: join(root, 'data'), flag: '--data-dir' },
        { path: 'configDir', value: configDir, flag: '--config-dir' },
        { path: 'firmware.toolchain', value: setting, flag: '--set' },
      ],
    });
    const bus = createInProcessBus();
    const logger = await createRootLogger({ level: 'silent', pretty: false });
    const deps = (name: string): ServiceDeps => ({ name, bus, config, logger, fail: () => undefined });
    const logstore = createLogStoreService(deps('logstore'));
    const firmware = createFirmwareService(deps('firmware'));
    await logstore.start();
    await firmware.start();
    cleanups.push(async () => (await logstore.stop(), await bus.close()));
    cleanups.push(() => firmware.stop());

    const finished = new Promise<pb.Job>((resolve) => {
      for (const event of ['completed', 'failed'] as const) bus.subscribe(firmwareSubjects.event(event), (msg) => resolve(pb.JobCompleted.decode(msg.data).job!));
    });
    const job = (await firmware.core.compile({ configuration: 'hall.yaml' })).job!;
    expect(await finished).toMatchObject({ id: job.id, status: pb.JobStatus.JOB_STATUS_COMPLETED, error: '' });
  });

  it.each([
    ['esphome', ['esphome']],
    ['python3 -m esphome', ['python3', '-m', 'esphome']],
    ['/opt/esphome/bin/esphome', ['/opt/esphome/bin/esphome']],
    ['tools/esphome-sim/bin/esphome --verbose', ['/srv/kiln/tools/esphome-sim/bin/esphome', '--verbose']],
    ['./esphome', ['/srv/kiln/esphome']],
  ])('%j → %j (bare names stay for PATH lookup)', (setting, argv) => {
    expect(toolchainCommand(setting, (path) => join('/srv/kiln', path))).toEqual(argv);
  });
});
