import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/**
 * The npm each supported Node ships: 22 → 10.9.x, 24 → 11.x (and 20.19/20.20 → 10.8.2: Node 20 is past its end
 * of life, but a machine that still has it can install). `npm ci` refuses a lockfile
 * that its own resolver would write differently ("Missing: yaml@2.9.1 from lock file"), so the README's quick
 * start and the Dockerfile are only true if every one of them accepts ours.
 */
const SHIPPED_NPMS = ['10.8.2', '10.9.9', '11.21.3'];
const CACHE = join(tmpdir(), 'kiln-npm-releases');

/** An npm release unpacked once per machine (from the npm registry, as `npm pack` fetches it). */
function npmCli(version: string): string {
  const cli = join(CACHE, version, 'package/bin/npm-cli.js');
  if (existsSync(cli)) return cli;
  const staging = join(CACHE, `.${version}-${process.pid}`);
  mkdirSync(staging, { recursive: true });
  const pack = spawnSync('npm', ['pack', `npm@${version}`, '--silent', '--pack-destination', staging], { encoding: 'utf8' });
  if (pack.status !== 0) throw new Error(`npm pack npm@${version} failed: ${pack.stderr}`);
  const untar = spawnSync('tar', ['xzf', join(staging, `npm-${version}.tgz`), '-C', staging], { encoding: 'utf8' });
  if (untar.status !== 0) throw new Error(`untar npm@${version} failed: ${untar.stderr}`);
  mkdirSync(join(CACHE, version), { recursive: true });
  // Rename is atomic: a concurrent run sees either no release or a whole one.
  if (!existsSync(cli)) renameSync(join(staging, 'package'), join(CACHE, version, 'package'));
  return cli;
}

/** package.json and package-lock.json of the root and every workspace: all `npm ci` reads to decide. */
function copyManifests(to: string): void {
  copyFileSync(join(ROOT, 'package.json'), join(to, 'package.json'));
  copyFileSync(join(ROOT, 'package-lock.json'), join(to, 'package-lock.json'));
  for (const group of ['libs', 'apps', 'tools']) {
    for (const name of readdirSync(join(ROOT, group))) {
      const manifest = join(ROOT, group, name, 'package.json');
      if (!existsSync(manifest)) continue;
      mkdirSync(dirname(join(to, group, name, 'package.json')), { recursive: true });
      copyFileSync(manifest, join(to, group, name, 'package.json'));
    }
  }
}

describe('package-lock.json', () => {
  it.each(SHIPPED_NPMS)('npm %s (shipped with Node 20.19, 22 and 24) accepts it for npm ci', async (version) => {
    const cli = npmCli(version);
    const dir = await mkdtemp(join(tmpdir(), 'kiln-lock-'));
    try {
      copyManifests(dir);
      // --dry-run runs the lockfile check `npm ci` starts with, and installs nothing.
      const ci = spawnSync(process.execPath, [cli, 'ci', '--dry-run', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: dir, encoding: 'utf8', env: { ...process.env, npm_config_engine_strict: 'false' } });
      const errors = ci.stderr.split('\n').filter((l) => l.startsWith('npm error') && !l.startsWith('npm error ['));
      expect({ version, status: ci.status, errors: errors.slice(0, 6) }).toEqual({ version, status: 0, errors: [] });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
