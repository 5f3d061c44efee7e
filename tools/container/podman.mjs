// What the container scripts (image-test.mjs, compose-test.mjs) share: podman as this machine runs it,
// the image the first builds and the second runs, the wait for its healthcheck, and the API probe.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { checkout, sleep } from '../deploy-checks.mjs';

/** podman's global flags here: runc under cgroupfs (no systemd to manage cgroups). */
export const PODMAN_GLOBAL = ['--runtime', 'runc', '--cgroup-manager=cgroupfs'];
/** This machine refuses podman's default rlimits: every container gets these. */
export const RUN_LIMITS = ['--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=1024:1024'];
/** The image image-test.mjs builds from deploy/compose/Dockerfile and compose-test.mjs runs. */
export const KILN_IMAGE = 'localhost/kiln:image-test';

/** Run podman; never throws: `ok`, its stdout, and stdout+stderr as `out`. */
export function podman(args, opts = {}) {
  const r = spawnSync('podman', [...PODMAN_GLOBAL, ...args], { encoding: 'utf8', maxBuffer: 256 << 20, ...opts });
  return { ok: r.status === 0, stdout: r.stdout ?? '', out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

/** Until the container's HEALTHCHECK passes (true) or ~40 s went by (false). */
export async function healthy(container) {
  for (let i = 0; i < 160; i++) {
    if (podman(['healthcheck', 'run', container]).ok) return true;
    await sleep(250);
  }
  return false;
}

/** tools/container/ws-probe.mjs against a gateway: its outcome, or `{error}` with what it printed. */
export function probeGateway(url, password) {
  const r = spawnSync(process.execPath, [join(checkout, 'tools/container/ws-probe.mjs'), url, password], { encoding: 'utf8', timeout: 90_000 });
  try {
    return JSON.parse(r.stdout.trim());
  } catch {
    return { error: `${r.stdout}${r.stderr}`.trim().slice(-400) };
  }
}
