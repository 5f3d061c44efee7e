import type { DeviceInfo } from '../devices/index.js';
import { arg, parseArgs, v } from './args.js';
import type { CommandHandler } from './types.js';

/** A device as the WebSocket API shows it (upstream snake_case names). */
export function deviceToJson(d: DeviceInfo) {
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

/** `devices/*`: the YAML files in the config dir (the registry notices changes made on disk too). */
export const devicesCommands: Record<string, CommandHandler> = {
  'devices/list': async (ctx, args) => {
    parseArgs(v.strictObject({}), args);
    return { result: { configured: ctx.devices.list().map(deviceToJson), importable: [] } };
  },
  'devices/get_config': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ configuration: arg.configuration }), args);
    return { result: { configuration: a.configuration, content: await ctx.devices.getConfig(a.configuration) } };
  },
  'devices/update_config': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ configuration: arg.configuration, content: v.string('must be a string'), allow_wipe: v.optional(v.boolean()) }), args);
    return { result: deviceToJson(await ctx.devices.updateConfig(a.configuration, a.content)) };
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
    const device = await ctx.devices.create({
      name: a.name,
      ...(a.platform !== undefined ? { platform: a.platform } : {}),
      ...(a.board_id !== undefined ? { board: a.board_id } : {}),
      ...(a.overwrite !== undefined ? { overwrite: a.overwrite } : {}),
    });
    return { result: deviceToJson(device) };
  },
  'devices/delete': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ configuration: arg.configuration }), args);
    await ctx.devices.delete(a.configuration);
    return { result: { configuration: a.configuration, deleted: true } };
  },
};
