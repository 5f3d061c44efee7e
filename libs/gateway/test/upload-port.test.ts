import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, startStack, type Stack } from './harness.js';

let s: Stack;
let c: Client;
beforeAll(async () => {
  s = await startStack();
  c = await Client.connect(s.wsUrl);
  await c.next((f) => f.event === 'server_info');
});
afterAll(async () => {
  c.close();
  await s.close();
});

describe('the port of firmware/upload, install and install_bulk', () => {
  it.each([
    ['OTA', 'OTA'],
    ['192.168.1.20', '192.168.1.20'],
    ['fe80::1', 'fe80::1'],
    ['kitchen.local', 'kitchen.local'],
    ['kitchen', 'kitchen'],
    ['/dev/ttyUSB0', '/dev/ttyUSB0'],
    ['/dev/serial/by-id/usb-Silicon_Labs_CP2102_0001-if00-port0', '/dev/serial/by-id/usb-Silicon_Labs_CP2102_0001-if00-port0'],
    ['/dev/./ttyACM0', '/dev/ttyACM0'],
  ])('%j is accepted (recorded as %j)', async (port, recorded) => {
    for (const command of ['firmware/upload', 'firmware/install']) {
      const reply = await c.call(command, { configuration: 'kitchen.yaml', port });
      const job = reply.result as { port: string; upload?: { port: string } };
      expect(job.upload?.port ?? job.port).toBe(recorded);
    }
  });

  it.each(['/etc/passwd', '../../dev/null', '/dev/../etc/passwd', 'dev/ttyUSB0', '/dev/', '/dev', '/dev/serial/', '/tmp/x', '-oProxyCommand=x', 'kitchen local', 'a;b', 'http://kitchen', '/dev/ttyUSB0\n'])(
    '%j is refused with invalid_args naming it; nothing is queued',
    async (port) => {
      // Jobs of the cases above may still finish and leave the bounded history meanwhile: what must not
      // appear is a job this case created.
      const before = new Set(((await c.call('firmware/get_jobs')).result as Array<{ id: string }>).map((j) => j.id));
      for (const [command, args] of [
        ['firmware/upload', { configuration: 'kitchen.yaml', port }],
        ['firmware/install', { configuration: 'kitchen.yaml', port }],
        ['firmware/install_bulk', { configurations: ['kitchen.yaml'], port }],
      ] as const) {
        const reply = await c.call(command, args);
        expect(reply.error_code).toBe('invalid_args');
        expect(reply.details).toMatchObject({ value: port });
        expect(String((reply.details as { message: string }).message)).toContain(JSON.stringify(port));
      }
      expect(((await c.call('firmware/get_jobs')).result as Array<{ id: string }>).filter((j) => !before.has(j.id))).toEqual([]);
    },
  );
});
