import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, startStack, type Frame, type Stack } from './harness.js';

let stack: Stack;
let c: Client;
beforeAll(async () => {
  stack = await startStack({ devices: [] });
  c = await Client.connect(stack.wsUrl);
});
afterAll(async () => {
  c.close();
  await stack.close();
});

type Entry = { id: string } & Record<string, unknown>;
const result = (f: Frame) => {
  expect(f.error_code, JSON.stringify(f)).toBeUndefined();
  return f.result as Record<string, Entry[]> & { total: number };
};
const ids = (list: Entry[]) => list.map((e) => e.id);

describe('catalog commands over the WebSocket (shipped catalog)', () => {
  it('components/*: list with filters and paging, bodies, categories, docs, pin modes', async () => {
    const page = result(await c.call('components/get_components', { category: 'sensor', limit: 2, offset: 1 }));
    expect(page.total).toBe(3);
    expect(ids(page.components)).toEqual(['sensor.adc', 'sensor.bme280_i2c']);
    expect(result(await c.call('components/get_components', { exclude_category: 'core' })).total).toBe(10);
    expect(result(await c.call('components/get_components', { exclude_category: ['core', 'sensor'] })).total).toBe(7);
    expect(ids(result(await c.call('components/get_components', { board_id: 'esp32dev', provides: 'output' })).components)).toEqual(['output.ledc']);
    expect(ids(result(await c.call('components/get_components', { query: 'relay' })).components)).toEqual(['switch.gpio']);
    const bodies = result(await c.call('components/get_component_bodies', { component_ids: ['i2c', 'missing'] }));
    expect(ids(bodies.components)).toEqual(['i2c']);
    expect(bodies.components[0]!['config_entries']).toHaveLength(3);
    expect(result(await c.call('components/get_categories', { board_id: 'd1_mini' })).categories).toContainEqual({ category: 'output', count: 1 });
    expect(result(await c.call('components/get_integration_docs')).docs).toHaveLength(14);
    expect(result(await c.call('components/get_pin_registry_modes'))).toHaveProperty('modes.pcf8574');
  });

  it('boards/*: search, one board, compatible boards', async () => {
    expect(ids(result(await c.call('boards/get_boards', { platform: 'esp8266', tag: 'relay' })).boards)).toEqual(['sonoff_basic']);
    expect(result(await c.call('boards/get_board', { board_id: 'rpipicow' }))).toMatchObject({ id: 'rpipicow', requires_wifi: true });
    expect(result(await c.call('boards/get_compatible_boards', { board_id: 'nope' }))).toEqual({ boards: [], total: 0 });
  });

  it('automations/*: the five lists and bodies', async () => {
    for (const [command, key, count] of [
      ['automations/get_triggers', 'triggers', 4],
      ['automations/get_actions', 'actions', 6],
      ['automations/get_conditions', 'conditions', 2],
      ['automations/get_filters', 'filters', 3],
      ['automations/get_light_effects', 'light_effects', 2],
    ] as const) {
      expect(result(await c.call(command, {}))[key], command).toHaveLength(count);
    }
    const bodies = result(await c.call('automations/get_bodies', { ids: ['delay', 'offset'], kind: 'actions' }));
    expect(Object.keys(bodies)).toEqual(['actions']);
    expect(ids(bodies.actions!)).toEqual(['delay']);
  });

  const bad: [string, string, Record<string, unknown>, string, RegExp][] = [
    ['unknown board', 'components/get_components', { board_id: 'nope' }, 'not_found', /board_id: no board "nope"/],
    ['limit too large', 'components/get_components', { limit: 5000 }, 'invalid_args', /limit: must be at most 1000/],
    ['limit zero', 'boards/get_boards', { limit: 0 }, 'invalid_args', /limit: must be at least 1/],
    ['negative offset', 'components/get_components', { offset: -1 }, 'invalid_args', /offset: must not be negative/],
    ['ids not a list', 'components/get_component_bodies', { component_ids: 'wifi' }, 'invalid_args', /component_ids: must be a list of ids/],
    ['unknown argument', 'boards/get_board', { board_id: 'd1_mini', extra: 1 }, 'invalid_args', /extra: unknown argument/],
    ['missing board_id', 'boards/get_board', {}, 'invalid_args', /board_id/],
    ['unknown kind', 'automations/get_bodies', { ids: ['x'], kind: 'macros' }, 'invalid_args', /kind: must be one of triggers, actions/],
    ['platform is not an argument of get_categories', 'components/get_categories', { board_id: 'd1_mini', platform: 'esp32' }, 'invalid_args', /unknown argument/],
  ];
  for (const [name, command, args, code, message] of bad) {
    it(`bad input: ${name} gets ${code} naming the value`, async () => {
      const frame = await c.call(command, args);
      expect(frame.error_code).toBe(code);
      expect((frame['details'] as { message: string }).message).toMatch(message);
    });
  }
});

describe('devices/create with a catalog board', () => {
  it('takes platform and PlatformIO board from the catalog; refuses an unknown board without a platform', async () => {
    const created = result(await c.call('devices/create', { name: 'Shed Relay', board_id: 'sonoff_basic' }));
    expect(created).toMatchObject({ configuration: 'shed-relay.yaml', platform: 'esp8266', board: 'esp01_1m' });
    const unknown = await c.call('devices/create', { name: 'Odd', board_id: 'my-custom-board' });
    expect(unknown).toMatchObject({ error_code: 'not_found', details: { message: expect.stringMatching(/no board "my-custom-board" in the catalog \(give platform/) } });
    const raw = result(await c.call('devices/create', { name: 'Odd', platform: 'esp32', board_id: 'my-custom-board' }));
    expect(raw).toMatchObject({ platform: 'esp32', board: 'my-custom-board' });
    const clash = await c.call('devices/create', { name: 'Clash', platform: 'esp32', board_id: 'd1_mini' });
    expect(clash).toMatchObject({ error_code: 'invalid_args', details: { message: expect.stringMatching(/platform: board "d1_mini" belongs to platform esp8266/) } });
  });
});
