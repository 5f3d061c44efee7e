// What the deploy-shape scripts (tools/systemd/boot-test.mjs, tools/container/image-test.mjs) share:
// TAP-like `ok`/`not ok` lines with their figures, a failure count for the exit status, and small
// synchronous process helpers (these scripts drive systemctl/podman step by step).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The checkout these scripts belong to (no trailing slash). */
export const checkout = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');

let failures = 0;

/** Print one check with its figures; returns `ok` so a caller can stop after a fatal one. */
export function check(ok, what, figures = {}) {
  const detail = Object.keys(figures).length ? ` ${JSON.stringify(figures)}` : '';
  console.log(`${ok ? 'ok' : 'not ok'} - ${what}${detail}`);
  if (!ok) failures++;
  return ok;
}

/** The closing line and exit status: 0 when every check passed. */
export function finish(kind) {
  console.log(failures === 0 ? `# all ${kind} checks passed` : `# ${failures} ${kind} check(s) failed`);
  process.exitCode = failures === 0 ? 0 : 1;
}

export const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20, ...opts }).trim();
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export function timed(fn) {
  const started = Date.now();
  const value = fn();
  return { value, ms: Date.now() - started };
}
