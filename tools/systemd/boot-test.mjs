#!/usr/bin/env node
// Boots Kiln's systemd units under a real systemd: a minimal Debian root (tools/systemd/build-root, cached)
// booted with systemd-nspawn, this checkout bound read-only at /opt/kiln, the pinned Node 24 at /opt/node,
// NATS inside. Each check prints `ok`/`not ok` with its figures; the exit status is the number of failures.
// Run as root after `npm run build`:  node tools/systemd/boot-test.mjs
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, chownSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { check, checkout, finish, run, sleep, timed } from '../deploy-checks.mjs';

const HOST_NAME = 'build-box.home.arpa'; // dotted, as most host names are (the worker unit once refused one)
const PER_SERVICE = ['kiln-logstore', 'kiln-catalog', 'kiln-firmware', 'kiln-devices', 'kiln-gateway'];


// The root filesystem (built once, cached) and a throwaway overlay of it for this boot.
const root = run(join(checkout, 'tools/build-root'), ['systemd'], { stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 });
const nodeBin = run(join(checkout, 'tools/node/node-release'), ['primary']);
const scratch = mkdtempSync(join(tmpdir(), 'kiln-boot-'));
const merged = join(scratch, 'merged');
for (const d of ['upper', 'work', 'merged']) mkdirSync(join(scratch, d));
run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${root},upperdir=${join(scratch, 'upper')},workdir=${join(scratch, 'work')}`, merged]);

// What an operator installs (docs/OPERATIONS.md "systemd"): the units, /etc/kiln/kiln.json, node on PATH.
const etc = (path) => join(merged, 'etc', path);
writeFileSync(etc('hostname'), `${HOST_NAME}\n`);
for (const unit of readdirSync(join(checkout, 'deploy/systemd')).filter((f) => f.endsWith('.service'))) {
  copyFileSync(join(checkout, 'deploy/systemd', unit), etc(`systemd/system/${unit}`));
}
const config = JSON.parse(readFileSync(join(checkout, 'deploy/systemd/kiln.json'), 'utf8'));
// The esphome CLI cannot be installed here (no PyPI): the simulator stands in for it.
config.firmware.toolchain = '/opt/kiln/tools/esphome-sim/bin/esphome';
mkdirSync(etc('kiln'), { recursive: true });
writeFileSync(etc('kiln/kiln.json'), JSON.stringify(config, null, 2));
mkdirSync(join(merged, 'usr/local/bin'), { recursive: true });
symlinkSync('/opt/node/node', join(merged, 'usr/local/bin/node'));
// Test-only: a short watchdog so the SIGSTOP check takes seconds (the shipped units keep 30 s).
mkdirSync(etc('systemd/system/kiln-supervise.service.d'), { recursive: true });
writeFileSync(etc('systemd/system/kiln-supervise.service.d/test-watchdog.conf'), '[Service]\nWatchdogSec=4\nRestartSec=1\n');
// The device the compiles build, in the state dir the units get (StateDirectory=kiln, owned by kiln).
const [uid, gid] = readFileSync(etc('passwd'), 'utf8').split('\n').find((l) => l.startsWith('kiln:')).split(':').slice(2, 4).map(Number);
const configDir = join(merged, 'var/lib/kiln/config');
mkdirSync(configDir, { recursive: true });
writeFileSync(join(configDir, 'porch.yaml'), 'esphome:\n  name: porch\nesp32:\n  board: esp32dev\n');
for (const p of [join(merged, 'var/lib/kiln'), configDir, join(configDir, 'porch.yaml')]) chownSync(p, uid, gid);

const nspawn = spawn('systemd-nspawn', ['--register=no', '--keep-unit', '--private-network', '-D', merged, `--bind-ro=${checkout}:/opt/kiln`, `--bind-ro=${nodeBin}:/opt/node`, '-b'], { stdio: ['ignore', 'pipe', 'pipe'] });
let consoleLog = '';
nspawn.stdout.on('data', (d) => (consoleLog += d));
nspawn.stderr.on('data', (d) => (consoleLog += d));
const nspawnExited = new Promise((r) => nspawn.on('exit', r));

/** The container's PID 1 (systemd), the child of systemd-nspawn. */
function leader() {
  for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === nspawn.pid) return Number(pid);
    } catch {
      // gone
    }
  }
  return undefined;
}

let pid1;
const inside = (args, opts = {}) => run('nsenter', ['-t', String(pid1), '-a', '--', ...args], { timeout: 60_000, ...opts });
const insideOk = (args) => {
  try {
    return { ok: true, out: inside(args) };
  } catch (err) {
    return { ok: false, out: `${err.stdout ?? ''}${err.stderr ?? ''}`.trim() };
  }
};
const show = (unit, props) => Object.fromEntries(inside(['systemctl', 'show', unit, '-p', props.join(',')]).split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
const rssMb = (unit) => {
  const { MainPID } = show(unit, ['MainPID']);
  const status = insideOk(['cat', `/proc/${MainPID}/status`]).out;
  return Number((Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? NaN) / 1024).toFixed(1));
};
const journal = (unit) => insideOk(['journalctl', '-u', unit, '--no-pager', '-n', '40', '-o', 'cat']).out;
/** Compile porch.yaml through the firmware service, from the container's network namespace. */
const compile = () => {
  try {
    return JSON.parse(run('nsenter', ['-t', String(pid1), '-n', '--', process.execPath, join(checkout, 'tools/systemd/compile-probe.mjs'), 'porch.yaml'], { timeout: 90_000 }));
  } catch (err) {
    return { status: 'error', output: `${err.stdout ?? ''}${err.stderr ?? ''}`.trim().slice(-800) };
  }
};

try {
  for (let i = 0; i < 200 && !(pid1 = leader()); i++) await sleep(50);
  let state = 'unknown';
  for (let i = 0; i < 120; i++) {
    state = insideOk(['systemctl', 'is-system-running']).out;
    if (state === 'running' || state === 'degraded') break;
    await sleep(250);
  }
  if (!check(state === 'running' || state === 'degraded', 'the container boots systemd', { state, nats: insideOk(['systemctl', 'is-active', 'nats-server']).out })) throw new Error(consoleLog.slice(-2000));

  // 1. One unit: readiness is Kiln's READY=1 (systemctl start returns then), the watchdog, a clean stop.
  const start = timed(() => insideOk(['systemctl', 'start', 'kiln-supervise']));
  const up = show('kiln-supervise', ['ActiveState', 'SubState', 'MainPID']);
  check(start.value.ok && up.ActiveState === 'active', 'kiln-supervise (Type=notify) is active when systemctl start returns', { readyMs: start.ms, ...up, err: start.value.ok ? undefined : start.value.out, journal: up.ActiveState === 'active' ? undefined : journal('kiln-supervise') });
  check(compile().status === 'completed', 'a compile runs end to end in the one-unit shape');
  const supervisedRss = rssMb('kiln-supervise');
  inside(['kill', '-STOP', up.MainPID]);
  const stoppedAt = Date.now();
  let after = up;
  for (let i = 0; i < 120; i++) {
    after = show('kiln-supervise', ['ActiveState', 'SubState', 'MainPID', 'NRestarts']);
    if (after.MainPID !== up.MainPID && after.MainPID !== '0' && after.ActiveState === 'active') break;
    await sleep(250);
  }
  check(after.MainPID !== up.MainPID && after.ActiveState === 'active' && Number(after.NRestarts) >= 1, 'a SIGSTOPped kiln-supervise is killed by the watchdog and restarted', { watchdogSec: 4, backInMs: Date.now() - stoppedAt, ...after });
  const stop = timed(() => insideOk(['systemctl', 'stop', 'kiln-supervise']));
  const stopped = show('kiln-supervise', ['ActiveState', 'Result', 'ExecMainStatus']);
  check(stop.value.ok && stopped.ActiveState === 'inactive' && stopped.Result === 'success' && stopped.ExecMainStatus === '0', 'systemctl stop stops kiln-supervise cleanly (exit 0)', { stopMs: stop.ms, ...stopped });

  // 2. A unit per service: every one active, a compile end to end, then Conflicts= with the one-unit shape.
  const split = timed(() => insideOk(['systemctl', 'start', ...PER_SERVICE.map((u) => `${u}.service`)]));
  const states = Object.fromEntries(PER_SERVICE.map((u) => [u, show(u, ['ActiveState']).ActiveState]));
  check(split.value.ok && Object.values(states).every((s) => s === 'active'), 'every per-service unit is active', { readyMs: split.ms, ...states, err: split.value.ok ? undefined : split.value.out });
  check(compile().status === 'completed', 'a compile runs end to end across the per-service units (NATS)');
  const splitRss = Object.fromEntries(PER_SERVICE.map((u) => [u, rssMb(u)]));
  const splitTotal = Number(Object.values(splitRss).reduce((a, b) => a + b, 0).toFixed(1));
  console.log(`# RSS: kiln-supervise ${supervisedRss} MB (every service, one process) vs per-service units ${splitTotal} MB in all ${JSON.stringify(splitRss)}`);

  // 3. The split compile worker: the firmware service hands compiles to it; its memory limit holds.
  mkdirSync(etc('systemd/system/kiln-firmware.service.d'), { recursive: true });
  writeFileSync(etc('systemd/system/kiln-firmware.service.d/workers.conf'), '[Service]\nEnvironment=KILN_FIRMWARE__COMPILE_EXECUTOR=workers\n');
  inside(['systemctl', 'daemon-reload']);
  const worker = insideOk(['systemctl', 'start', 'kiln-worker-compile']);
  inside(['systemctl', 'restart', 'kiln-firmware']);
  const workerState = show('kiln-worker-compile', ['ActiveState', 'MemoryMax']);
  check(worker.ok && workerState.ActiveState === 'active' && workerState.MemoryMax === String(1536 * 1024 * 1024), 'kiln-worker-compile is active on a dotted host name, with its MemoryMax', { host: inside(['hostname']), ...workerState });
  const viaWorker = compile();
  const workerLog = journal('kiln-worker-compile');
  check(viaWorker.status === 'completed' && viaWorker.jobId !== undefined && workerLog.includes(viaWorker.jobId), 'a compile runs on the split worker (its journal names the job)', { status: viaWorker.status, workerRssMb: rssMb('kiln-worker-compile') });

  // 4. Conflicts=: starting the one-unit shape stops the per-service units; the worker joins either shape.
  rmSync(etc('systemd/system/kiln-firmware.service.d'), { recursive: true });
  inside(['systemctl', 'daemon-reload']);
  insideOk(['systemctl', 'start', 'kiln-supervise']);
  const afterSwap = Object.fromEntries([...PER_SERVICE, 'kiln-supervise', 'kiln-worker-compile'].map((u) => [u, show(u, ['ActiveState']).ActiveState]));
  check(PER_SERVICE.every((u) => afterSwap[u] === 'inactive') && afterSwap['kiln-supervise'] === 'active' && afterSwap['kiln-worker-compile'] === 'active', 'starting kiln-supervise stops the per-service units (Conflicts=); the worker stays', afterSwap);

  // 5. The receiver unit, beside either shape.
  const receiver = insideOk(['systemctl', 'start', 'kiln-receiver']);
  const receiverState = show('kiln-receiver', ['ActiveState']);
  check(receiver.ok && receiverState.ActiveState === 'active', 'kiln-receiver is active beside kiln-supervise', { ...receiverState, rssMb: rssMb('kiln-receiver'), journal: receiverState.ActiveState === 'active' ? undefined : journal('kiln-receiver') });

  // 6. Everything stops cleanly.
  const all = ['kiln-supervise', 'kiln-worker-compile', 'kiln-receiver'];
  insideOk(['systemctl', 'stop', ...all]);
  const results = Object.fromEntries(all.map((u) => [u, show(u, ['Result']).Result]));
  check(Object.values(results).every((r) => r === 'success'), 'every unit stops with Result=success', results);
} catch (err) {
  check(false, `the boot test ran to its end: ${err.message}`);
} finally {
  try {
    if (pid1) inside(['systemctl', 'poweroff'], { timeout: 10_000 });
  } catch {
    // already going down
  }
  const killer = setTimeout(() => nspawn.kill('SIGKILL'), 20_000);
  await nspawnExited;
  clearTimeout(killer);
  try {
    run('umount', [merged]);
  } catch {
    run('umount', ['-l', merged]);
  }
  rmSync(scratch, { recursive: true, force: true });
}
finish('systemd');
