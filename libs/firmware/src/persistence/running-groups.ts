import { join } from 'node:path';
import { RunningGroups } from '@kiln/toolchain';

/**
 * Where the firmware lanes record the process group of each toolchain process they run here
 * (`<data_dir>/firmware/running/<job_id>.json`), so a restart after kill -9 reaps what was left running.
 */
export function firmwareRunningGroups(dataDir: string): RunningGroups {
  return new RunningGroups(join(dataDir, 'firmware', 'running'));
}
