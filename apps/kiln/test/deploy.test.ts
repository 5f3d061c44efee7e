import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectNatsBus } from '@kiln/bus';
import { catalogSettingsSchema } from '@kiln/catalog';
import { envToPath } from '@kiln/config';
import { SIM_BIN } from '@kiln/esphome-sim';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { defaultServiceNames as serviceNames } from '../src/registry.js';
import { kilnPerTest } from './cli-harness.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SYSTEMD = join(ROOT, 'deploy/systemd');
const COMPOSE = join(ROOT, 'deploy/compose');
const NATS_URL = process.env.NATS_TEST_URL ?? 'nats://127.0.0.1:4222';
const host = kilnPerTest();

/** A tool the deploy checks need; under CI=true a missing one is a failure (.ci/run installs it), locally a skip. */
function tool(command: string, args: string[]): boolean {
  const ok = spawnSync(command, args, { stdio: 'ignore' }).status === 0;
  if (!ok && process.env.CI === 'true') throw new Error(`${command} is required under CI (apt-get install systemd)`);
  return ok;
}

/** `[Section]` → key → values (a key may repeat), as systemd reads a unit file. */
function readUnit(file: string): Record<string, Record<string, string[]>> {
  const unit: Record<string, Record<string, string[]>> = {};
  let section = '';
  for (const raw of readFileSync(join(SYSTEMD, file), 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) unit[(section = header[1]!)] ??= {};
    else {
      const eq = line.indexOf('=');
      ((unit[section]![line.slice(0, eq)] ??= []) as string[]).push(line.slice(eq + 1));
    }
  }
  return unit;
}

const units = readdirSync(SYSTEMD).filter((f) => f.endsWith('.service'));

describe('deploy/systemd', () => {
  it('systemd-analyze verify passes on every unit, without a warning', async ({ skip }) => {
    if (!tool('systemd-analyze', ['--version'])) return skip('systemd-analyze is not installed');
    // verify checks that ExecStart exists: point the units' install prefix at this checkout.
    const dir = join(host.dataDir, 'units');
    await mkdir(dir);
    for (const file of units) await writeFile(join(dir, file), readFileSync(join(SYSTEMD, file), 'utf8').replaceAll('/opt/kiln/', `${ROOT}/`));
    for (const file of units) {
      const result = spawnSync('systemd-analyze', ['verify', '--man=no', join(dir, file)], { encoding: 'utf8' });
      expect({ file, status: result.status, output: `${result.stdout}${result.stderr}`.trim() }).toEqual({ file, status: 0, output: '' });
    }
  });

  it('every unit is sandboxed: systemd-analyze security rates its exposure 3.0 or lower', async ({ skip }) => {
    if (!tool('systemd-analyze', ['--version'])) return skip('systemd-analyze is not installed');
    for (const file of units) {
      const result = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', join(SYSTEMD, file)], { encoding: 'utf8' });
      const exposure = Number(/Overall exposure level for \S+: ([\d.]+)/.exec(result.stdout)?.[1] ?? NaN);
      expect({ file, exposure: exposure <= 3.0 ? 'at most 3.0' : exposure }).toEqual({ file, exposure: 'at most 3.0' });
    }
  });

  it('one unit per service kiln supervise hosts, exclusive with kiln-supervise; every unit notifies readiness and has a watchdog', () => {
    const perService = serviceNames.map((svc) => `kiln-${svc}.service`);
    expect(units.sort()).toEqual([...perService, 'kiln-supervise.service', 'kiln-worker-compile.service', 'kiln-receiver.service'].sort());
    const supervise = readUnit('kiln-supervise.service');
    expect(supervise.Unit!.Conflicts!.join(' ').split(/\s+/).sort()).toEqual([...perService].sort());
    expect(supervise.Service!.ExecStart![0]).toMatch(/^\/opt\/kiln\/apps\/kiln\/bin\/kiln supervise --config \/etc\/kiln\/kiln\.json/);
    for (const svc of serviceNames) {
      const unit = readUnit(`kiln-${svc}.service`);
      expect(unit.Unit!.Conflicts).toEqual(['kiln-supervise.service']);
      expect(unit.Service!.ExecStart![0]).toMatch(new RegExp(`^/opt/kiln/apps/kiln/bin/kiln serve ${svc} --config /etc/kiln/kiln.json`));
    }
    for (const file of units) {
      const service = readUnit(file).Service!;
      expect({ file, type: service.Type, access: service.NotifyAccess, watchdog: service.WatchdogSec?.length }).toEqual({ file, type: ['notify'], access: ['all'], watchdog: 1 });
    }
    // Health ports differ between units that can run at once (each process serves its own).
    const ports = units.map((f) => /healthListen=([\d.:]+)/.exec(readUnit(f).Service!.ExecStart![0]!)?.[1] ?? 'config');
    expect(new Set(ports).size).toBe(ports.length);
  });

  it('the compile worker unit has its own memory limit and restart policy and does not conflict with either shape', () => {
    const worker = readUnit('kiln-worker-compile.service');
    expect(worker.Service!.MemoryMax).toEqual(['1536M']);
    expect(worker.Service!.Restart).toEqual(['on-failure']);
    expect(worker.Unit!.Conflicts).toBeUndefined();
    expect(worker.Service!.ExecStart![0]).toMatch(/bin\/kiln worker compile --config \/etc\/kiln\/kiln\.json/);
  });

  it('the receiver unit (opt-in, on the build machine) runs `kiln receiver` beside either shape', () => {
    const receiver = readUnit('kiln-receiver.service');
    expect(receiver.Unit!.Conflicts).toBeUndefined();
    expect(receiver.Service!.Restart).toEqual(['on-failure']);
    expect(receiver.Service!.ExecStart![0]).toMatch(/bin\/kiln receiver --config \/etc\/kiln\/kiln\.json/);
  });
});

interface ComposeFile {
  services: Record<string, { build?: { context: string; dockerfile: string }; image?: string; command?: string[]; volumes?: string[]; depends_on?: string[]; profiles?: string[]; mem_limit?: string }>;
  volumes: Record<string, unknown>;
}

describe('deploy/compose', () => {
  const compose = parse(readFileSync(join(COMPOSE, 'docker-compose.yml'), 'utf8')) as ComposeFile;

  it('references what exists: build context, Dockerfile, the config example; named volumes are declared', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['kiln', 'kiln-worker-compile', 'nats']);
    const { build } = compose.services.kiln!;
    const context = resolve(COMPOSE, build!.context);
    expect(context).toBe(ROOT.replace(/\/$/, ''));
    expect(statSync(join(context, build!.dockerfile)).isFile()).toBe(true);
    expect(compose.services.nats!.image).toMatch(/^nats:\d+\.\d+/);
    for (const [name, service] of Object.entries(compose.services)) {
      for (const volume of service.volumes ?? []) {
        const [source] = volume.split(':');
        if (source!.startsWith('.')) expect(existsSync(resolve(COMPOSE, source!)), `${name}: ${source}`).toBe(true);
        else expect(compose.volumes, `${name}: ${source}`).toHaveProperty(source!);
      }
      for (const dependency of service.depends_on ?? []) expect(compose.services).toHaveProperty(dependency);
    }
    // The worker shares the data volume (config dir with the device YAML and build dirs) and has a memory limit.
    const worker = compose.services['kiln-worker-compile']!;
    expect(worker.command!.slice(0, 2)).toEqual(['worker', 'compile']);
    expect(worker.volumes).toEqual(compose.services.kiln!.volumes);
    expect(worker.mem_limit).toBe('1536m');
    expect(worker.image).toBe(compose.services.kiln!.image);
    expect(readFileSync(join(context, build!.dockerfile), 'utf8')).toMatch(/ENTRYPOINT \["\/usr\/bin\/tini", "--", "\/opt\/kiln\/apps\/kiln\/bin\/kiln"\]/);
  });

  it('the image imports the upstream catalog where catalog.dir points, and "none" skips it (as ESPHOME_VERSION)', () => {
    const dockerfile = readFileSync(join(ROOT, 'deploy/compose/Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^ARG DEVICE_BUILDER_VERSION=\d+\.\d+\.\d+$/m);
    expect(dockerfile).toMatch(/if \[ "\$\{DEVICE_BUILDER_VERSION\}" != none \]; then/);
    expect(dockerfile).toMatch(/pip download --no-cache-dir --no-deps --no-binary :all: "esphome-device-builder==\$\{DEVICE_BUILDER_VERSION\}" -d \/tmp\/device-builder/);
    const to = /kiln catalog import --from \/tmp\/device-builder\/\*\.tar\.gz --to (\S+)/.exec(dockerfile)?.[1];
    const env = /^ENV .*\bKILN_CATALOG__DIR=(\S+)/m.exec(dockerfile)?.[1];
    expect(to).toBe('/opt/kiln/upstream-catalog');
    expect(env).toBe(to);
    // The variable names the setting the catalog service reads.
    expect(envToPath('KILN_CATALOG__DIR')).toBe('catalog.dir');
    expect(catalogSettingsSchema.entries).toHaveProperty('dir');
    // The image test builds without PyPI.
    expect(readFileSync(join(ROOT, 'tools/container/image-test.mjs'), 'utf8')).toContain("'--build-arg', 'DEVICE_BUILDER_VERSION=none'");
  });
});

/**
 * A unit's ExecStart as systemd runs it: `$VAR` (its Environment= value, split into words; empty → no word),
 * `${VAR}` (one word), and the specifiers %H (host name, here one with dots, as most are) and %%.
 */
function expandExecStart(file: string, hostName: string): { argv: string[]; env: Record<string, string> } {
  const service = readUnit(file).Service!;
  const env = new Map<string, string>();
  for (const assignment of service.Environment ?? []) {
    const eq = assignment.indexOf('=');
    env.set(assignment.slice(0, eq), assignment.slice(eq + 1));
  }
  const words: string[] = [];
  for (const word of service.ExecStart![0]!.replace(/%(.)/g, (_, c: string) => (c === 'H' ? hostName : c === '%' ? '%' : `%${c}`)).split(/\s+/)) {
    const whole = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word);
    if (whole) words.push(...(env.get(whole[1]!) ?? '').split(/\s+/).filter((w) => w !== ''));
    else words.push(word.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => env.get(name) ?? ''));
  }
  return { argv: words, env: Object.fromEntries(env) };
}

describe('deploy/systemd command lines', () => {
  it('every unit starts with its ExecStart and Environment= as systemd expands them, on a host name with dots', async ({ skip }) => {
    const bus = await connectNatsBus({ servers: NATS_URL, timeoutMs: 2_000 }).catch((err: unknown) => {
      if (process.env.CI === 'true') throw err;
      return undefined;
    });
    if (!bus) return skip('NATS is not running');
    await bus.close();
    const prefix = `t${process.pid}u${Math.random().toString(36).slice(2, 8)}`;
    for (const file of units) {
      // systemd hands Environment= to the process too: Kiln reads its KILN_* variables.
      const { argv, env } = expandExecStart(file, 'build-box.home.arpa');
      const [binary, ...args] = argv;
      expect(binary).toBe('/opt/kiln/apps/kiln/bin/kiln');
      // Only what cannot work here is overridden (paths, ports, the toolchain); every flag of the unit stays.
      const configured = args.map((a) => (a === '/etc/kiln/kiln.json' ? join(ROOT, 'deploy/systemd/kiln.json') : a));
      const overrides = ['--config-dir', join(host.dataDir, 'config'), '--nats', NATS_URL, '--set', `natsPrefix=${prefix}`, '--set', 'supervisor.healthListen=127.0.0.1:0', '--set', 'gateway.listen=127.0.0.1:0', '--set', 'receiver.grpcListen=127.0.0.1:0', '--set', `firmware.toolchain=${SIM_BIN}`];
      const kiln = host.start([...configured, ...overrides], env);
      if (configured[0] === 'worker') {
        for (let i = 0; i < 200 && !kiln.output().includes('compile worker ready') && kiln.child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
        expect({ file, ready: kiln.output().includes('compile worker ready') }, kiln.output()).toEqual({ file, ready: true });
      } else {
        await expect(kiln.healthUrl().then(() => 'ready', (err: Error) => err.message), file).resolves.toBe('ready');
      }
      expect({ file, exit: (await kiln.stop()).code }).toEqual({ file, exit: 0 });
    }
  });
});

describe('the config examples', () => {
  for (const example of ['deploy/compose/kiln.json', 'deploy/systemd/kiln.json']) {
    it(`${example} is accepted by kiln supervise and kiln worker compile`, async ({ skip }) => {
      const bus = await connectNatsBus({ servers: NATS_URL, timeoutMs: 2_000 }).catch((err: unknown) => {
        if (process.env.CI === 'true') throw err;
        return undefined;
      });
      if (!bus) return skip('NATS is not running');
      await bus.close();
      const prefix = `t${process.pid}d${Math.random().toString(36).slice(2, 8)}`;
      // Only what cannot work here is overridden (paths, the NATS address, ports); every section is read from the example.
      const overrides = ['--config', join(ROOT, example), '--config-dir', join(host.dataDir, 'config'), '--nats', NATS_URL, '--set', `natsPrefix=${prefix}`, '--set', 'supervisor.healthListen=127.0.0.1:0', '--set', 'gateway.listen=127.0.0.1:0', '--set', `firmware.toolchain=${SIM_BIN}`];
      const supervise = host.start(['supervise', ...overrides]);
      await supervise.healthUrl();
      const worker = host.start(['worker', 'compile', ...overrides]);
      for (let i = 0; i < 200 && !worker.output().includes('compile worker ready'); i++) await new Promise((r) => setTimeout(r, 50));
      expect(worker.output()).toContain('compile worker ready');
      expect((await worker.stop()).code).toBe(0);
      expect((await supervise.stop()).code).toBe(0);
    });
  }
});
