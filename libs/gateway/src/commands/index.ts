import { authCommands } from './auth-commands.js';
import { catalogCommands } from './catalog-commands.js';
import { devicesCommands } from './devices-commands.js';
import { firmwareCommands } from './firmware-commands.js';
import { remoteBuildCommands, remoteJobCommands } from './remote-build-commands.js';
import { systemCommands } from './system-commands.js';
import type { CommandHandler } from './types.js';

/** Every command the WebSocket API dispatches to a handler, by its upstream name (`stop_stream` is the connection's own). */
export const gatewayCommands: Readonly<Record<string, CommandHandler>> = {
  ...authCommands,
  ...systemCommands,
  ...firmwareCommands,
  ...devicesCommands,
  ...catalogCommands,
  ...remoteBuildCommands,
  ...remoteJobCommands,
};
