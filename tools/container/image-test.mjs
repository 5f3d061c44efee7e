#!/usr/bin/env node
// Builds deploy/compose/Dockerfile with podman/buildah and runs the image for real: as a non-root user under
// an init, its healthcheck, a login and a compile through the mapped port, a clean stop; prints the image size.
// No registry serves images here, so the Dockerfile's NODE_IMAGE is a local stand-in: a debootstrap root
// (tools/build-root container) with the pinned Node 24 (tools/node/versions.env), this machine's npm and its
// CA bundle (the package registries answer only with it). PyPI is unreachable: the image is built with
// ESPHOME_VERSION=none and compiles with the simulator it ships (tools/esphome-sim), labelled as such, and
// with DEVICE_BUILDER_VERSION=none (no upstream catalog from PyPI: it serves the catalog Kiln ships).
// Run as root:  node tools/container/image-test.mjs
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, copyFileSync, symlinkSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { check, checkout, finish, run, timed } from '../deploy-checks.mjs';
import { healthy, KILN_IMAGE as IMAGE, podman, PODMAN_GLOBAL, probeGateway, RUN_LIMITS } from './podman.mjs';

const PORT = 16052;
const PASSWORD = 'image-test-password';
/** podman whose failure ends the test (its stdout). */
const mustPodman = (args) => run('podman', [...PODMAN_GLOBAL, ...args]);

/** localhost/kiln-node-base:<version>: what node:24-bookworm-slim is, from Debian's packages and the npm registry. */
function nodeBaseImage() {
  const nodeBin = run(join(checkout, 'tools/node/node-release'), ['primary']);
  const version = run(join(nodeBin, 'node'), ['--version']).slice(1);
  const tag = `localhost/kiln-node-base:${version}`;
  if (podman(['image', 'exists', tag]).ok) return tag;
  const root = run(join(checkout, 'tools/build-root'), ['container'], { stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 });
  const staging = mkdtempSync(join(tmpdir(), 'kiln-node-base-'));
  try {
    const tree = join(staging, 'root');
    run('cp', ['-a', root, tree]); // device nodes and ownership too
    copyFileSync(join(nodeBin, 'node'), join(tree, 'usr/local/bin/node'));
    const npm = realpathSync(join(dirname(realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim())), '..'));
    cpSync(npm, join(tree, 'usr/local/lib/node_modules/npm'), { recursive: true, verbatimSymlinks: true });
    symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(tree, 'usr/local/bin/npm'));
    symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(tree, 'usr/local/bin/npx'));
    mkdirSync(join(tree, 'usr/local/share/ca-certificates'), { recursive: true });
    copyFileSync('/etc/ssl/certs/ca-certificates.crt', join(tree, 'usr/local/share/ca-certificates/machine-bundle.crt'));
    copyFileSync('/etc/ssl/certs/ca-certificates.crt', join(tree, 'etc/ssl/certs/ca-certificates.crt'));
    const changes = ['ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/machine-bundle.crt', 'CMD ["node"]'];
    execFileSync('sh', ['-c', `tar -C "${tree}" -c . | podman ${PODMAN_GLOBAL.join(' ')} import ${changes.map((c) => `--change '${c}'`).join(' ')} - ${tag}`], { stdio: ['ignore', 'ignore', 'inherit'] });
    return tag;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

const NAME = `kiln-image-test-${process.pid}`;
const scratch = mkdtempSync(join(tmpdir(), 'kiln-image-'));
try {
  const base = nodeBaseImage();
  check(true, 'the Node base stand-in is there', { base });
  const build = timed(() => podman(['build', '--network=host', '--format', 'docker', '-f', 'deploy/compose/Dockerfile', '--build-arg', `NODE_IMAGE=${base}`, '--build-arg', 'ESPHOME_VERSION=none', '--build-arg', 'DEVICE_BUILDER_VERSION=none', '-t', IMAGE, '.'], { cwd: checkout }));
  if (!check(build.value.ok, 'the Dockerfile builds (npm ci, npm run build, the runtime stage with tini)', { buildSeconds: Math.round(build.ms / 1000), out: build.value.ok ? undefined : build.value.out.split('\n').slice(-25).join('\n') })) throw new Error('no image');
  const sizeMb = Math.round(Number(mustPodman(['image', 'inspect', '--format', '{{.Size}}', IMAGE])) / 1e6);
  console.log(`# image size: ${sizeMb} MB (without the esphome toolchain, which PyPI would add)`);

  // The compose file's embedded default, minus NATS (a NAS running Kiln alone): the config mounted read-only.
  const config = JSON.parse(readFileSync(join(checkout, 'deploy/compose/kiln.json'), 'utf8'));
  delete config.nats;
  config.firmware.toolchain = '/opt/kiln/tools/esphome-sim/bin/esphome';
  writeFileSync(join(scratch, 'kiln.json'), JSON.stringify(config));
  mustPodman(['run', '-d', '--name', NAME, ...RUN_LIMITS, '-p', `127.0.0.1:${PORT}:6052`, '-e', `KILN_GATEWAY__PASSWORD=${PASSWORD}`, '-v', `${join(scratch, 'kiln.json')}:/etc/kiln/kiln.json:ro`, IMAGE]);
  const startedAt = Date.now();
  const ready = await healthy(NAME);
  check(ready, 'the image\'s HEALTHCHECK passes once Kiln is ready', { readyMs: Date.now() - startedAt, logs: ready ? undefined : podman(['logs', '--tail', '20', NAME]).out });
  const uid = mustPodman(['exec', NAME, 'id', '-u']);
  const pid1 = mustPodman(['exec', NAME, 'cat', '/proc/1/cmdline']).split('\0').filter(Boolean);
  check(uid !== '0' && pid1[0] === '/usr/bin/tini', 'Kiln runs as a non-root user under tini (PID 1)', { uid, pid1: pid1.join(' ') });
  const outcome = probeGateway(`ws://127.0.0.1:${PORT}/ws`, PASSWORD);
  check(outcome.beforeLogin === 'not_authenticated' && outcome.authenticated === true && outcome.job === 'completed', 'through the mapped port: refused before login, a login, a device created and compiled (simulator toolchain)', outcome);
  const rss = mustPodman(['exec', NAME, 'sh', '-c', 'grep VmRSS /proc/$(cat /proc/1/task/1/children | cut -d" " -f1)/status']);
  console.log(`# kiln supervise in the container: ${rss.replace(/\s+/g, ' ')}`);
  const stop = timed(() => podman(['stop', '-t', '30', NAME]));
  const exit = mustPodman(['inspect', '--format', '{{.State.ExitCode}}', NAME]);
  check(stop.value.ok && exit === '0', 'podman stop: tini forwards SIGTERM, Kiln stops cleanly (exit 0)', { stopMs: stop.ms, exit });
} catch (err) {
  check(false, `the image test ran to its end: ${err.message}`);
} finally {
  podman(['rm', '-f', NAME]);
  // Each run rebuilds the tag: drop the layers the previous build left unnamed.
  podman(['image', 'prune', '-f']);
  rmSync(scratch, { recursive: true, force: true });
}
finish('container');
