import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EPHEMERAL, kilnPerTest } from './cli-harness.js';

const LISTENER = fileURLToPath(new URL('./fixtures/notify-listener.py', import.meta.url));
const host = kilnPerTest();
const has = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
const tools = has('python3', ['-c', 'pass']) && has('systemd-notify', ['--version']);
// .ci/run installs both: under CI a missing one must fail, not skip.
if (!tools && process.env.CI === 'true') throw new Error('python3 and systemd-notify are required under CI');

/** Datagrams sent to a NOTIFY_SOCKET, as systemd would receive them. */
async function notifySocket(path: string): Promise<{ messages: string[]; close(): void }> {
  const listener = spawn('python3', [LISTENER, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  const messages: string[] = [];
  let buffered = '';
  await new Promise<void>((resolve) =>
    listener.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        if (line === 'listening') resolve();
        else messages.push(JSON.parse(line) as string);
      }
    }),
  );
  return { messages, close: () => listener.kill() };
}

async function until(ok: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (ok()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`never: ${what}`);
}

describe.skipIf(!tools)('systemd notification (Type=notify through systemd-notify)', () => {
  it('READY=1 with MAINPID once every service runs, watchdog pings while running, STOPPING=1 on SIGTERM', async () => {
    const socket = await notifySocket(join(host.dataDir, 'notify.sock'));
    try {
      const kiln = host.start(['supervise', ...EPHEMERAL], { NOTIFY_SOCKET: join(host.dataDir, 'notify.sock'), WATCHDOG_USEC: '200000' });
      await kiln.healthUrl();
      await until(() => socket.messages.some((m) => m.startsWith('READY=1')), 'READY=1');
      const ready = socket.messages.find((m) => m.startsWith('READY=1'))!;
      expect(ready).toContain(`MAINPID=${kiln.child.pid}`);
      expect(ready).toMatch(/STATUS=logstore, catalog, firmware, devices, gateway running/);
      await until(() => socket.messages.filter((m) => m === 'WATCHDOG=1').length >= 3, 'three watchdog pings');
      expect((await kiln.stop()).code).toBe(0);
      expect(socket.messages).toContain('STOPPING=1');
    } finally {
      socket.close();
    }
  });
});
