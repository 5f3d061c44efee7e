import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { joinAddress, ReceiverPairings, splitAddress, type ReceiverPairing } from '../src/index.js';
import { loadOrCreateIdentity } from '../src/store/index.js';

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

it('update changes the row with that pin in place, persisted; an unknown pin changes nothing', async () => {
  const pairings = new ReceiverPairings(dir);
  await pairings.save(row('a', 'h1:7054'));
  await pairings.save(row('b', 'h2:7054'));
  const moved = await pairings.update(row('a', '').pin, (r) => ({ ...r, address: joinAddress('fd00::1', 7055) }));
  expect(moved).toMatchObject({ dashboardId: 'a', address: '[fd00::1]:7055' });
  expect(await pairings.update('f'.repeat(64), (r) => ({ ...r, address: 'x:1' }))).toBeUndefined();
  expect((await new ReceiverPairings(dir).list()).map((r) => [r.dashboardId, r.address])).toEqual([['a', '[fd00::1]:7055'], ['b', 'h2:7054']]);
  expect(splitAddress(moved!.address)).toEqual({ host: 'fd00::1', port: 7055 });
  expect(() => splitAddress('nohost')).toThrow(/address: must be host:port, got "nohost"/);
});

it('loadOrCreateIdentity (also the store entry): concurrent first uses create one identity, later ones read it', async () => {
  const first = await Promise.all([loadOrCreateIdentity(join(dir, 'id'), 'office'), loadOrCreateIdentity(join(dir, 'id'), 'office')]);
  expect(first[1].fingerprint).toBe(first[0].fingerprint);
  expect((await loadOrCreateIdentity(join(dir, 'id'), 'other')).fingerprint).toBe(first[0].fingerprint);
  expect((await stat(join(dir, 'id', 'identity.json'))).mode & 0o777).toBe(0o600);
});
