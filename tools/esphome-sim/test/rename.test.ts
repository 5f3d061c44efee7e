import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runSim, workspace, type Workspace } from './helpers.js';

let ws: Workspace;
beforeEach(async () => (ws = await workspace()));
afterEach(() => ws.dispose());

const fast = { default: { compileMs: 50, uploadMs: 20, steps: 3 } };

describe('rename', () => {
  it('writes the new YAML, builds and flashes it over the air, then removes the old YAML', async () => {
    const config = await ws.device('porch');
    const result = await runSim(['rename', config, 'garden'], { knobs: fast });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/INFO Successfully renamed porch to garden/);
    expect(result.stdout).toMatch(/Resolving IP address of porch\.local/);
    expect(existsSync(config)).toBe(false);
    expect(readFileSync(join(ws.dir, 'garden.yaml'), 'utf8')).toMatch(/^  name: garden$/m);
    expect(existsSync(join(ws.dir, '.esphome/build/garden/.pioenvs/garden/firmware.bin'))).toBe(true);
  });

  it('a failed flash keeps the old YAML and removes the new one', async () => {
    const config = await ws.device('porch');
    const result = await runSim(['rename', config, 'garden'], { knobs: { default: { ...fast.default, failUpload: true } } });
    expect(result.code).toBe(1);
    expect(existsSync(config)).toBe(true);
    expect(existsSync(join(ws.dir, 'garden.yaml'))).toBe(false);
  });

  it.each([
    ['Bad Name', /Invalid name: Bad Name/],
    ['porch', /already exists/],
  ])('refuses %j', async (name, message) => {
    const config = await ws.device('porch');
    const result = await runSim(['rename', config, name], { knobs: fast });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(message);
    expect(existsSync(config)).toBe(true);
  });

  it('needs both arguments', async () => {
    const config = await ws.device('porch');
    const result = await runSim(['rename', config]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/required: configuration, name/);
  });
});
