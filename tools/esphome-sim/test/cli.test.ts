import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BANNER, VERSION_LINE } from '../src/index.js';
import { lines, runSim, workspace, type Workspace } from './helpers.js';

let ws: Workspace;
beforeEach(async () => {
  ws = await workspace();
});
afterEach(async () => {
  await ws.dispose();
});

describe('esphome-sim CLI', () => {
  it.each([['version'], ['--version']])('`esphome %s` is labelled a simulator', async (arg) => {
    const result = await runSim([arg]);
    expect(result.code).toBe(0);
    expect(lines(result.stdout)).toEqual([BANNER, VERSION_LINE]);
    expect(VERSION_LINE).toBe('Version: 2026.11.0 (esphome-sim: simulator, not the real toolchain)');
  });

  it('prints the simulator banner as the first line of every command', async () => {
    const config = await ws.device('banner');
    for (const args of [['compile', config], ['config', config], ['clean', config], ['bogus']]) {
      const result = await runSim(args);
      expect(lines(result.stdout)[0]).toBe(BANNER);
    }
  });

  it('rejects an unknown command like argparse (stderr, exit 2)', async () => {
    const result = await runSim(['frobnicate']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("esphome: error: argument command: invalid choice: 'frobnicate'");
    expect(result.stderr).toMatch(/^usage: esphome/);
  });

  it('requires a configuration argument (exit 2)', async () => {
    const result = await runSim(['compile']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('the following arguments are required: configuration');
  });

  it('rejects unknown options (exit 2)', async () => {
    const config = await ws.device('opts');
    const result = await runSim(['compile', '--turbo', config]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unrecognized arguments: --turbo');
  });

  it('fails with exit 1 for a missing YAML file', async () => {
    const result = await runSim(['compile', join(ws.dir, 'absent.yaml')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('ERROR Error while reading config: Could not find configuration file');
  });

  it('fails with exit 1 for invalid YAML and for a missing esphome.name', async () => {
    const broken = join(ws.dir, 'broken.yaml');
    await writeFile(broken, 'esphome:\n  name: [unclosed\n');
    const bad = await runSim(['compile', broken]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('Invalid YAML syntax');

    const nameless = join(ws.dir, 'nameless.yaml');
    await writeFile(nameless, 'esphome:\n  friendly_name: x\nesp32:\n  board: esp32dev\n');
    const missing = await runSim(['compile', nameless]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("'esphome.name' is required");
  });

  it('requires a platform key', async () => {
    const path = join(ws.dir, 'noplatform.yaml');
    await writeFile(path, 'esphome:\n  name: noplatform\n');
    const result = await runSim(['compile', path]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('Platform missing');
  });

  it('`config` validates and echoes the configuration', async () => {
    const config = await ws.device('echo');
    const result = await runSim(['config', config]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('INFO Configuration is valid!');
    expect(result.stdout).toContain('name: echo');
  });
});
