import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GatewayClient } from '@kiln/gateway';
import { packBundle } from '@kiln/remote-identity';
import { describe, expect, it } from 'vitest';
import { EPHEMERAL, kilnPerTest, runKiln } from './cli-harness.js';

const UPSTREAM = fileURLToPath(new URL('../../../../shared/data/esphome-catalog', import.meta.url));
const UPSTREAM_TREE = join(UPSTREAM, 'definitions');
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

  it('says when the import is not what Kiln serves (catalog.dir set elsewhere, as in the image)', async () => {
    const shipped = fileURLToPath(new URL('../../../definitions/source', import.meta.url));
    const elsewhere = await runKiln(['catalog', 'import', '--from', shipped, '--data-dir', host.dataDir], { HOME: host.dataDir, KILN_CATALOG__DIR: '/opt/kiln/upstream-catalog' });
    expect(elsewhere.code, elsewhere.stderr).toBe(0);
    expect(elsewhere.stdout).toContain('not served while catalog.dir is set (/opt/kiln/upstream-catalog): unset it (KILN_CATALOG__DIR= in a container) or import with --to /opt/kiln/upstream-catalog');
    const there = await runKiln(['catalog', 'import', '--from', shipped, '--to', join(host.dataDir, 'c'), '--data-dir', host.dataDir], { HOME: host.dataDir, KILN_CATALOG__DIR: join(host.dataDir, 'c') });
    expect(there.stdout).toContain('a running catalog service picks it up on restart');
  });

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

/**
 * A .tar.gz laid out as upstream publishes it, made by the system tar from links to the real data
 * (`-h` stores the files they point to): `<top>/esphome_device_builder/definitions/<name>` for each of
 * `files`, plus a few files outside the definitions that the import must skip.
 */
async function upstreamArchive(dir: string, name: string, top: string, files: Record<string, string>): Promise<string> {
  const root = join(dir, `${name}-src`);
  await mkdir(join(root, top, 'esphome_device_builder'), { recursive: true });
  await writeFile(join(root, top, 'PKG-INFO'), 'Metadata-Version: 2.4\nName: esphome-device-builder\n');
  await writeFile(join(root, top, 'esphome_device_builder', '__init__.py'), '');
  for (const [target, source] of Object.entries(files)) {
    const path = join(root, top, 'esphome_device_builder', target);
    await mkdir(join(path, '..'), { recursive: true });
    await symlink(source, path);
  }
  const archive = join(dir, `${name}.tar.gz`);
  execFileSync('tar', ['-czhf', archive, '-C', root, top]);
  return archive;
}

describe('kiln catalog import --from an upstream .tar.gz', () => {
  it("imports PyPI's sdist (monolithic definitions) and leaves nothing unpacked behind", async () => {
    if (!existsSync(UPSTREAM_TREE)) throw new Error(`upstream catalog data not found at ${UPSTREAM}`);
    const sdist = await upstreamArchive(host.dataDir, 'esphome_device_builder-1.14.9', 'esphome_device_builder-1.14.9', {
      'definitions/components.json': join(UPSTREAM, 'monolithic', 'components.json'),
      'definitions/automations.json': join(UPSTREAM, 'monolithic', 'automations.json'),
      'definitions/boards.json': join(UPSTREAM, 'legacy_boards.json'),
    });
    const imported = await runKiln(['catalog', 'import', '--from', sdist, '--data-dir', host.dataDir], { HOME: host.dataDir });
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toMatch(/^imported 936 components, 1084 automations, 490 boards \(\d+\.\d MB of bodies\) in \d+\.\d s into .*catalog\/tree-/m);
    const catalogDir = join(host.dataDir, 'catalog');
    expect((await readdir(catalogDir)).sort()).toEqual(['current', expect.stringMatching(/^tree-/)]);
    const tree = join(catalogDir, 'current');
    const index = JSON.parse(await readFile(join(tree, 'components.index.json'), 'utf8')) as { entries: Array<{ category: string }> };
    expect(index.entries.filter((c) => c.category === 'sensor')).toHaveLength(285);
  }, 120_000);

  it("imports GitHub's source archive of a tag (split tree) into --to", async () => {
    const github = await upstreamArchive(host.dataDir, 'device-builder-1.14.9', 'device-builder-1.14.9', { definitions: UPSTREAM_TREE });
    const to = join(host.dataDir, 'upstream-catalog');
    const imported = await runKiln(['catalog', 'import', '--from', github, '--to', to, '--data-dir', host.dataDir], { HOME: host.dataDir });
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toMatch(/^imported 936 components, 1084 automations, 1040 boards \(\d+\.\d MB of bodies\) in \d+\.\d s into .*upstream-catalog\/tree-/m);
    expect((await readdir(to)).sort()).toEqual(['current', expect.stringMatching(/^tree-/)]);
    const upstreamBody = JSON.parse(await readFile(join(UPSTREAM_TREE, 'components', 'sensor.dsmr.json'), 'utf8'));
    expect(JSON.parse(await readFile(join(to, 'current', 'components', 'sensor.dsmr.json'), 'utf8'))).toEqual(upstreamBody);
  }, 120_000);

  it('refuses a truncated archive, random bytes, no definitions inside, an entry with .. and a wheel, naming the file', async () => {
    const dir = host.dataDir;
    const whole = await upstreamArchive(dir, 'whole', 'esphome_device_builder-1.14.9', { definitions: UPSTREAM_TREE });
    const truncated = join(dir, 'truncated.tar.gz');
    await writeFile(truncated, (await readFile(whole)).subarray(0, 200_000));
    const random = join(dir, 'random.tar.gz');
    await writeFile(random, Buffer.from('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'hex'));
    const noDefinitions = join(dir, 'no-definitions.tar.gz');
    await writeFile(noDefinitions, await packBundle([{ name: 'esphome-1.0/esphome/core.py', data: '' }, { name: 'esphome-1.0/PKG-INFO', data: 'Name: esphome' }]));
    const dotdot = join(dir, 'dotdot.tar.gz');
    await writeFile(
      dotdot,
      await packBundle([
        { name: 'db-1.0/esphome_device_builder/definitions/components.json', data: '{"components": []}' },
        { name: 'db-1.0/esphome_device_builder/definitions/../../../../escaped.json', data: '{}' },
      ]),
    );
    const wheel = join(dir, 'esphome_device_builder-1.14.9-py3-none-any.whl');
    await writeFile(wheel, Buffer.from('PK\x03\x04not really a zip', 'latin1'));
    const refusals: [string, RegExp][] = [
      [truncated, /--from .*truncated\.tar\.gz: not a readable \.tar\.gz: truncated/],
      [random, /--from .*random\.tar\.gz: not a gzip file \(starts with 0xe3b0\)/],
      [noDefinitions, /--from .*no-definitions\.tar\.gz: no esphome_device_builder\/definitions\/ folder inside .*top-level: esphome-1\.0\/\)/],
      [dotdot, /--from .*dotdot\.tar\.gz: entry "db-1\.0\/esphome_device_builder\/definitions\/\.\.\/\.\.\/\.\.\/\.\.\/escaped\.json" is not a relative path inside the archive/],
      [wheel, /--from .*py3-none-any\.whl: a zip archive \(a wheel\?\): pass upstream's source distribution instead, esphome_device_builder-<version>\.tar\.gz/],
    ];
    for (const [archive, message] of refusals) {
      const r = await runKiln(['catalog', 'import', '--from', archive, '--data-dir', dir], { HOME: dir });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    expect(existsSync(join(dir, '..', 'escaped.json'))).toBe(false);
    // Nothing unpacked is left beside the (absent) catalog.
    expect(existsSync(join(dir, 'catalog')) ? await readdir(join(dir, 'catalog')) : []).toEqual([]);
  }, 120_000);
});
