import { rm, stat } from 'node:fs/promises';
import type { DevicePaths } from './artifacts.js';
import { DASHES, processingLine, resultLine } from './compile.js';
import type { DeviceConfig } from './config.js';
import { line } from './out.js';

/** `esphome clean`: removes `<data>/build/<name>`; storage and idedata stay, as with esphome. */
export async function clean(device: DeviceConfig, paths: DevicePaths): Promise<number> {
  const startedAt = Date.now();
  await line(processingLine(device));
  await line(DASHES);
  const existed = await stat(paths.buildDir).then(
    () => true,
    () => false,
  );
  if (existed) {
    await line(`Removing .pioenvs/${device.name}`);
    await rm(paths.buildDir, { recursive: true, force: true });
    await line('Done cleaning');
  } else {
    await line('Build environment is clean');
  }
  await line(resultLine(true, startedAt));
  await line('INFO Done!');
  return 0;
}
