import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { ReceiverPairings, type ReceiverPairing } from '../src/index.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-pairings-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const row = (id: string, address: string): ReceiverPairing => ({ dashboardId: id, name: id, address, pin: `${id}`.padEnd(64, '0'), enabled: true, pairedAtMs: 1 });

it('keeps one row per receiver, survives a reload, and concurrent changes all land', async () => {
  const pairings = new ReceiverPairings(dir);
  expect(await pairings.list()).toEqual([]);
  await Promise.all([pairings.save(row('a', 'h1:7054')), pairings.save(row('b', 'h2:7054')), pairings.save(row('c', 'h3:7054'))]);
  await pairings.save(row('a', 'h9:7054'));
  expect((await stat(join(dir, 'receivers.json'))).mode & 0o777).toBe(0o600);
  const reloaded = await new ReceiverPairings(dir).list();
  expect(reloaded.map((r) => [r.dashboardId, r.address]).sort()).toEqual([['a', 'h9:7054'], ['b', 'h2:7054'], ['c', 'h3:7054']]);
  expect(await pairings.remove('h2:7054')).toBe(true);
  expect(await pairings.remove('nobody')).toBe(false);
  expect((await pairings.list()).map((r) => r.dashboardId).sort()).toEqual(['a', 'c']);
});
