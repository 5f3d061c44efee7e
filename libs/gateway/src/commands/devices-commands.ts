import { arg, parseArgs, v } from './args.js';
import { FORGET_BUILD_TIMEOUT_MS, type devicesPb } from '@kiln/contracts';
import { assertConfigContentSize, invalidArgs, KilnError } from '@kiln/core';
import type { CommandContext, CommandHandler } from './types.js';

/** A device as the WebSocket API shows it (upstream snake_case names). */
export function deviceToJson(d: devicesPb.Device) {
  return {
    configuration: d.configuration,
    name: d.name,
    friendly_name: d.friendlyName,
    platform: d.platform,
    board: d.board,
    comment: d.comment,
    address: d.address,
    deployed_version: d.deployedVersion || null,
    has_build: d.hasBuild,
    modified_at: new Date(d.modifiedAtMs).toISOString(),
  };
}

/**
 * A catalog board id names its platform and PlatformIO board (`sonoff_basic` → esp8266 / esp01_1m).
 * A board the catalog does not know is taken as a PlatformIO board id when the platform is given.
 */
async function boardTarget(ctx: CommandContext, boardId: string, platform: string | undefined): Promise<{ platform?: string; board?: string }> {
  const { boards } = JSON.parse((await ctx.catalog.getCompatibleBoards({ boardId })).json) as { boards: { id: string; esphome: { platform: string; board: string } }[] };
  const known = boards.find((b) => b.id === boardId);
  if (!known) {
    if (platform === undefined) {
      throw new KilnError('not_found', `board_id: no board ${JSON.stringify(boardId)} in the catalog (give platform to use a PlatformIO board id)`, { field: 'board_id', value: boardId });
    }
    return { platform, board: boardId };
  }
  if (platform !== undefined && platform !== known.esphome.platform) {
    throw invalidArgs('platform', platform, `board ${JSON.stringify(boardId)} belongs to platform ${known.esphome.platform}`);
  }
  return { platform: known.esphome.platform, board: known.esphome.board };
}

/** `devices/*`: the YAML files in the config dir, through the devices service (its registry notices changes made on disk too). */
export const devicesCommands: Record<string, CommandHandler> = {
  'devices/list': async (ctx, args) => {
    parseArgs(v.strictObject({}), args);
    return { result: { configured: (await ctx.devices.list({})).devices.map(deviceToJson), importable: [] } };
  },
  'devices/get_config': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ configuration: arg.configuration }), args);
    return { result: { configuration: a.configuration, content: (await ctx.devices.getConfig({ configuration: a.configuration })).content } };
  },
  'devices/update_config': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ configuration: arg.configuration, content: v.string('must be a string'), allow_wipe: v.optional(v.boolean()) }), args);
    assertConfigContentSize(a.content);
    return { result: deviceToJson(deviceOf(await ctx.devices.updateConfig({ configuration: a.configuration, content: a.content }))) };
  },
  'devices/create': async (ctx, args) => {
    const a = parseArgs(
      v.strictObject({
        name: v.string('must be a string'),
        platform: v.optional(v.string('must be a string')),
        board_id: v.optional(v.string('must be a string')),
        overwrite: v.optional(v.boolean('must be a boolean')),
      }),
      args,
    );
    const target: { platform?: string; board?: string } = a.board_id === undefined ? (a.platform === undefined ? {} : { platform: a.platform }) : await boardTarget(ctx, a.board_id, a.platform);
    const created = await ctx.devices.create({ name: a.name, platform: target.platform, board: target.board, overwrite: a.overwrite });
    return { result: deviceToJson(deviceOf(created)) };
  },
  'devices/delete': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ configuration: arg.configuration }), args);
    // The devices service waits for the firmware service to end the device's jobs before its build goes.
    await ctx.devices.delete({ configuration: a.configuration }, { timeoutMs: DELETE_TIMEOUT_MS });
    return { result: { configuration: a.configuration, deleted: true } };
  },
};

/** Past the devices service's own wait on the firmware service, so its answer (or error) is what arrives. */
const DELETE_TIMEOUT_MS = FORGET_BUILD_TIMEOUT_MS + 5_000;

/** The device a devices-service reply carries (always set by that service). */
function deviceOf(reply: { device?: devicesPb.Device | undefined }): devicesPb.Device {
  if (!reply.device) throw new KilnError('internal_error', 'the devices service answered without the device');
  return reply.device;
}
