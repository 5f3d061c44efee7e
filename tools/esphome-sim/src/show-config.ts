import { stringify } from 'yaml';
import type { DeviceConfig } from './config.js';
import { line } from './out.js';

/** `esphome config`: the validated configuration echoed back as YAML. */
export async function showConfig(device: DeviceConfig): Promise<number> {
  await line('INFO Configuration is valid!');
  for (const text of stringify(device.config).trimEnd().split('\n')) await line(text);
  return 0;
}
