import { isIP } from 'node:net';
import { posix } from 'node:path';
import { invalidArgs } from '@kiln/core';

/** A host name or mDNS name (`kitchen.local`): labels of letters, digits, '-' and '_', never starting with '-'. */
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$/;
const SERIAL_ROOT = '/dev/';

/**
 * Where an upload goes, as `esphome upload --device` takes it: "OTA" (the address from the YAML), a
 * network host or IP, or a serial device under /dev/ (normalised first, so `/dev/../etc/passwd` is
 * seen as /etc/passwd). Anything else — a file path elsewhere, a relative path, an option-like value —
 * is refused: the port is handed to the toolchain, which would open it. Returns the normalised value.
 */
export function uploadPortArg(value: unknown, field = 'port'): string {
  const refuse = () => invalidArgs(field, value, 'must be "OTA", a host name or IP address, or a serial device under /dev/ (e.g. /dev/ttyUSB0)');
  if (typeof value !== 'string' || value.length === 0 || value.length > 255 || /[\s\0-\x1f\x7f]/.test(value)) throw refuse();
  if (value === 'OTA' || HOST_NAME.test(value) || isIP(value) !== 0) return value;
  if (value.startsWith('/')) {
    const device = posix.normalize(value);
    if (device.startsWith(SERIAL_ROOT) && device.length > SERIAL_ROOT.length && !device.endsWith('/')) return device;
  }
  throw refuse();
}
