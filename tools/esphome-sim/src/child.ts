import { spawn } from 'node:child_process';
import { writeAtomic } from './artifacts.js';

/**
 * The grandchild lives in the simulator's process group and stays alive as long as the simulator does,
 * like the gcc/esptool helpers a real build spawns. If the simulator is killed alone it is orphaned and
 * lingers a few seconds — long enough for a test to notice the caller did not kill the whole tree,
 * never long enough to leak. The simulator's pid is passed in (not read from process.ppid) because the
 * simulator may already be dead by the time the grandchild's script runs.
 */
const GRANDCHILD_SCRIPT = `
const [, parentArg, mode] = process.argv;
const parent = Number(parentArg);
if (mode === 'ignore-sigterm') process.on('SIGTERM', () => {});
const orphaned = () => { try { process.kill(parent, 0); return false; } catch { return true; } };
const timer = setInterval(() => {
  if (orphaned()) { clearInterval(timer); setTimeout(() => process.exit(0), 5000); }
}, 100);
`;

export async function spawnGrandchild(pidFile: string, ignoreSigterm: boolean): Promise<void> {
  const child = spawn(process.execPath, ['-e', GRANDCHILD_SCRIPT, String(process.pid), ignoreSigterm ? 'ignore-sigterm' : 'default'], {
    // No inherited pipes: a grandchild holding stdout open would keep the reader waiting after we exit.
    stdio: 'ignore',
  });
  child.unref();
  // Normal exit takes the grandchild along; only an external kill of the simulator alone orphans it.
  process.on('exit', () => {
    child.kill('SIGKILL');
  });
  if (child.pid !== undefined) await writeAtomic(pidFile, `${child.pid}\n`);
}
