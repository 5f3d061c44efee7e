import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { localBuildRoot, removeBuildOutputs, resolveBuildPaths, storageDir, storageJsonPath } from '../src/index.js';

let root: string | undefined;
afterEach(async () => {
  if (root) await rm(root, { recursive: true, force: true });
  root = undefined;
});

describe('the build tree', () => {
  it('names the same local paths whichever helper is asked', () => {
    const paths = resolveBuildPaths('/cfg', 'kitchen.yaml');
    expect(paths.storage).toBe(storageJsonPath('/cfg', 'kitchen.yaml'));
    expect(join(paths.storage, '..')).toBe(storageDir('/cfg'));
    expect(paths.buildRoot).toBe(localBuildRoot('/cfg'));
    expect(paths.buildDir('kitchen')).toBe('/cfg/.esphome/build/kitchen');
    expect(paths.firmwareDir('kitchen').startsWith(paths.buildDir('kitchen'))).toBe(true);
  });

  it('removeBuildOutputs removes the StorageJSON always, the build dir only for a plain device name', async () => {
    root = await mkdtemp(join(tmpdir(), 'kiln-build-tree-'));
    const paths = resolveBuildPaths(root, 'kitchen.yaml');
    const outside = join(root, 'outside');
    await mkdir(join(paths.storage, '..'), { recursive: true });
    await mkdir(paths.buildDir('kitchen'), { recursive: true });
    await mkdir(outside);
    await writeFile(paths.storage, '{}');
    await removeBuildOutputs(paths, '../../outside');
    expect(existsSync(paths.storage)).toBe(false);
    expect(existsSync(outside)).toBe(true);
    await removeBuildOutputs(paths, 'kitchen');
    expect(existsSync(paths.buildDir('kitchen'))).toBe(false);
  });
});
