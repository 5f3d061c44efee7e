#!/usr/bin/env node
// Runs deploy/compose/docker-compose.yml with podman-compose (Debian's 1.0.3), as far as it allows:
// the embedded default (NATS + Kiln) with a login and a compile through the mapped port, then the split
// compile worker (its profile started by name: this podman-compose has no --profile) running a compile.
// Needs the image tools/container/image-test.mjs built (localhost/kiln:image-test). No registry serves the
// `nats` image here: a stand-in is built from the same Debian base with Debian's nats-server. The compose
// file and kiln.json are used as shipped; an override file swaps only the images and the toolchain
// (the simulator the image carries: PyPI is unreachable, so the image has no esphome).
// Run as root:  node tools/container/compose-test.mjs
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { check, checkout, finish } from '../deploy-checks.mjs';
import { healthy, KILN_IMAGE, podman, PODMAN_GLOBAL, probeGateway, RUN_LIMITS } from './podman.mjs';

const PROJECT = `kilncompose${process.pid}`;
const PASSWORD = 'compose-test-password';
const NATS_IMAGE = 'localhost/kiln-nats-standin:test';

const compose = (dir, args) => {
  const r = spawnSync('podman-compose', ['--podman-args', PODMAN_GLOBAL.join(' '), '--podman-run-args', RUN_LIMITS.join(' '), '-p', PROJECT, '-f', 'docker-compose.yml', '-f', 'override.yml', ...args], { cwd: dir, encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env } });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}`.trim() };
};
const containerOf = (service) => `${PROJECT}_${service}_1`;
const probe = () => probeGateway('ws://127.0.0.1:6052/ws', PASSWORD);

const dir = mkdtempSync(join(tmpdir(), 'kiln-compose-'));
try {
  if (!check(podman(['image', 'exists', KILN_IMAGE]).ok, 'the image built by image-test.mjs is there', { image: KILN_IMAGE })) throw new Error('run tools/container/image-test.mjs first');
  const base = readFileSync(join(checkout, 'tools/node/versions.env'), 'utf8').match(/NODE_PRIMARY=(\S+)/)[1];
  if (!podman(['image', 'exists', NATS_IMAGE]).ok) {
    writeFileSync(join(dir, 'Containerfile.nats'), `FROM localhost/kiln-node-base:${base}\nRUN apt-get update && apt-get install -y --no-install-recommends nats-server && rm -rf /var/lib/apt/lists/*\nENTRYPOINT ["/usr/sbin/nats-server"]\n`);
    const built = podman(['build', '--network=host', '-f', join(dir, 'Containerfile.nats'), '-t', NATS_IMAGE, dir]);
    if (!check(built.ok, 'the nats stand-in image builds (Debian nats-server)', { out: built.ok ? undefined : built.out.slice(-600) })) throw new Error('no nats image');
  }
  copyFileSync(join(checkout, 'deploy/compose/docker-compose.yml'), join(dir, 'docker-compose.yml'));
  copyFileSync(join(checkout, 'deploy/compose/kiln.json'), join(dir, 'kiln.json'));
  writeFileSync(join(dir, '.env'), `KILN_GATEWAY_PASSWORD=${PASSWORD}\n`);
  const toolchain = { KILN_FIRMWARE__TOOLCHAIN: '/opt/kiln/tools/esphome-sim/bin/esphome' };
  writeFileSync(
    join(dir, 'override.yml'),
    JSON.stringify({ services: { nats: { image: NATS_IMAGE }, kiln: { image: KILN_IMAGE, environment: toolchain }, 'kiln-worker-compile': { image: KILN_IMAGE, environment: toolchain } } }),
  );

  // 1. The embedded default: NATS + Kiln (every service in one process), the password from .env.
  const up = compose(dir, ['up', '-d', '--no-build', 'nats', 'kiln']);
  check(up.ok, 'podman-compose up starts nats and kiln', { out: up.ok ? undefined : up.out.slice(-800) });
  const ready = await healthy(containerOf('kiln'));
  check(ready, 'kiln passes the image\'s healthcheck under compose', { logs: ready ? undefined : podman(['logs', '--tail', '20', containerOf('kiln')]).out });
  const init = podman(['exec', containerOf('kiln'), 'cat', '/proc/1/cmdline']).stdout.split('\0').filter(Boolean);
  // Node as PID 1 would leave the toolchain's orphans as zombies (apps/kiln/test/container-init.test.ts).
  check(init.length > 0 && !/(^|\/)node$/.test(init[0]), 'an init is PID 1, not Kiln itself', { pid1: init.join(' ') });
  const first = probe();
  check(first.beforeLogin === 'not_authenticated' && first.authenticated === true && first.job === 'completed', 'through port 6052: the .env password is required, a login, a device created and compiled (over NATS)', first);

  // 2. The split compile worker: compileExecutor=workers in kiln.json, the worker service started by name.
  const config = JSON.parse(readFileSync(join(dir, 'kiln.json'), 'utf8'));
  config.firmware.compileExecutor = 'workers';
  writeFileSync(join(dir, 'kiln.json'), JSON.stringify(config, null, 2));
  const worker = compose(dir, ['up', '-d', '--no-build', 'kiln-worker-compile']);
  const restarted = podman(['restart', containerOf('kiln')]);
  check(worker.ok && restarted.ok && (await healthy(containerOf('kiln'))), 'the compile worker starts beside kiln (kiln restarted with compileExecutor=workers)', { out: worker.ok ? undefined : worker.out.slice(-800) });
  const memory = podman(['inspect', '--format', '{{.HostConfig.Memory}}', containerOf('kiln-worker-compile')]).stdout.trim();
  const second = probe();
  const workerLog = podman(['logs', containerOf('kiln-worker-compile')]).out;
  check(second.job === 'completed' && second.jobId !== undefined && workerLog.includes(second.jobId), 'a compile runs on the worker container (its log names the job), with its mem_limit', { ...second, memoryLimit: memory });
  check(memory === String(1536 * 1024 * 1024), 'the worker container has mem_limit 1536m', { memory });
} catch (err) {
  check(false, `the compose test ran to its end: ${err.message}`);
} finally {
  const down = compose(dir, ['down', '-v']);
  if (!down.ok) console.log(`# podman-compose down: ${down.out.slice(-400)}`);
  rmSync(dir, { recursive: true, force: true });
}
finish('compose');
