import { lstat, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { gatewayCommands } from '../src/commands/index.js';
import type { CommandContext, Session } from '../src/commands/types.js';
import { Client, startStack, type Stack } from './harness.js';

const EVIL = 'evil.yaml';
const MARKER = '# outside the config dir: must never be read or copied';

/**
 * The argument keys a command's schema asks about, found by handing it a recording args object and a
 * context that refuses every use: validation reads every key it knows before it rejects.
 */
async function argKeysOf(command: string): Promise<Set<string>> {
  const keys = new Set<string>();
  const args = new Proxy({} as Record<string, unknown>, {
    has: (_t, key) => (keys.add(String(key)), false),
    get: (_t, key) => (typeof key === 'string' && keys.add(key), undefined),
  });
  const ctx = new Proxy({} as CommandContext, {
    get: () => {
      throw new Error('probe: no context');
    },
  });
  const session: Session = { authenticated: false, token: undefined, closeAfterReply: false };
  await gatewayCommands[command]!(ctx, args, session).catch(() => undefined);
  return keys;
}

/** Every command that takes a configuration, with arguments that are valid apart from naming the outside link. */
const REFUSED: Record<string, Record<string, unknown>> = {
  'firmware/compile': { configuration: EVIL },
  'firmware/upload': { configuration: EVIL, port: 'OTA' },
  'firmware/install': { configuration: EVIL, port: 'OTA' },
  // A good configuration first: one refused name refuses the whole batch (nothing queued).
  'firmware/install_bulk': { configurations: ['kitchen.yaml', EVIL], port: 'OTA' },
  'firmware/compile_bulk': { configurations: ['kitchen.yaml', EVIL] },
  'firmware/clean': { configuration: EVIL },
  'firmware/rename': { configuration: EVIL, new_name: 'stolen' },
  'firmware/get_binaries': { configuration: EVIL },
  'firmware/download_token': { configuration: EVIL, file: 'firmware.bin' },
  'devices/get_config': { configuration: EVIL },
  'devices/update_config': { configuration: EVIL, content: 'esphome:\n  name: evil\n' },
  'devices/delete': { configuration: EVIL },
  'remote_build/submit_job': { pin_sha256: 'ab'.repeat(32), configuration: EVIL },
};
/** `configuration` only filters the job list here: no file is resolved. */
const FILTER_ONLY = ['firmware/get_jobs'];

const stacks: Stack[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const s of stacks.splice(0)) await s.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function stackWithLinks(): Promise<{ s: Stack; c: Client; outsideFile: string }> {
  // porch compiles long enough to hold the lane while a test rearranges the config dir.
  const s = await startStack({ knobs: { default: { compileMs: 200, uploadMs: 100, steps: 10 }, devices: { porch: { compileMs: 30_000 } } } });
  stacks.push(s);
  const outside = await mkdtemp(join(tmpdir(), 'kiln-outside-'));
  dirs.push(outside);
  const outsideFile = join(outside, 'x.yaml');
  await writeFile(outsideFile, `esphome:\n  name: stolen\nesp32:\n  board: esp32dev\n${MARKER}\n`);
  await symlink(outsideFile, join(s.configDir, EVIL));
  await symlink('kitchen.yaml', join(s.configDir, 'alias.yaml'));
  const c = await Client.connect(s.wsUrl);
  await c.next((f) => f.event === 'server_info');
  return { s, c, outsideFile };
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(join(entry.parentPath, entry.name));
  }
  return out;
}

describe('configurations that are links leading out of the config dir', () => {
  it('the table covers every command whose arguments name a configuration', async () => {
    const taking: string[] = [];
    for (const command of Object.keys(gatewayCommands)) {
      const keys = await argKeysOf(command);
      if (keys.has('configuration') || keys.has('configurations')) taking.push(command);
    }
    expect(taking.sort()).toEqual([...Object.keys(REFUSED), ...FILTER_ONLY].sort());
  });

  it.each(Object.entries(REFUSED))('%s refuses the link, naming the configuration', async (command, args) => {
    const { s, c, outsideFile } = await stackWithLinks();
    const before = await readFile(outsideFile, 'utf8');
    const reply = await c.call(command, args);
    expect(reply.error_code).toBe('permission_denied');
    expect(String((reply.details as { message: string }).message)).toContain(EVIL);
    // Nothing queued (so no toolchain ever opened the outside file), nothing copied in, nothing changed.
    expect((await c.call('firmware/get_jobs')).result).toEqual([]);
    for (const file of await filesUnder(s.configDir)) expect(await readFile(file, 'utf8')).not.toContain(MARKER);
    expect((await readdir(s.configDir)).filter((f) => f.endsWith('.yaml')).sort()).toEqual(['alias.yaml', EVIL, 'kitchen.yaml', 'porch.yaml']);
    expect((await lstat(join(s.configDir, EVIL))).isSymbolicLink()).toBe(true);
    expect(await readFile(outsideFile, 'utf8')).toBe(before);
    c.close();
  });

  it('a configuration swapped for an outside link while its job waits fails when the job starts, naming it', async () => {
    const { s, c } = await stackWithLinks();
    // porch holds the compile lane until cancelled; kitchen waits behind it.
    const porch = (await c.call('firmware/compile', { configuration: 'porch.yaml' })).result as { id: string };
    const kitchen = (await c.call('firmware/compile', { configuration: 'kitchen.yaml' })).result as { id: string; status: string };
    expect(kitchen.status).toBe('queued');
    await rm(join(s.configDir, 'kitchen.yaml'));
    await symlink(await readlink(join(s.configDir, EVIL)), join(s.configDir, 'kitchen.yaml'));
    await c.call('firmware/cancel', { job_id: porch.id });
    const done = (await c.call('firmware/follow_job', { job_id: kitchen.id })).result as { status: string; error: string };
    expect(done).toMatchObject({ status: 'failed', error: expect.stringContaining('"kitchen.yaml" is a link that leads outside the config dir') });
    for (const file of await filesUnder(s.configDir)) expect(await readFile(file, 'utf8')).not.toContain(MARKER);
    c.close();
  });

  it('a link that stays inside the config dir still builds', async () => {
    const { c } = await stackWithLinks();
    const job = (await c.call('firmware/compile', { configuration: 'alias.yaml' })).result as { id: string };
    expect((await c.call('firmware/follow_job', { job_id: job.id })).result).toMatchObject({ status: 'completed', configuration: 'alias.yaml' });
    c.close();
  });
});
