import { authCommands } from './auth-commands.js';
import { catalogCommands } from './catalog-commands.js';
import { devicesCommands } from './devices-commands.js';
import { firmwareCommands } from './firmware-commands.js';
import { remoteBuildCommands, remoteJobCommands } from './remote-build-commands.js';
import { systemCommands } from './system-commands.js';
import type { CommandHandler } from './types.js';

/** Every WebSocket command the gateway answers, by its upstream name. */
export const gatewayCommands: Readonly<Record<string, CommandHandler>> = {
  ...authCommands,
  ...systemCommands,
  ...firmwareCommands,
  ...devicesCommands,
  ...catalogCommands,
  ...remoteBuildCommands,
  ...remoteJobCommands,
};
