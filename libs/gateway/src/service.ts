import { mkdir } from 'node:fs/promises';
import { createFirmwareBusClient, type KilnService, type ServiceDeps } from '@kiln/contracts';
import { Authenticator } from './auth.js';
import { authCommands } from './commands/auth-commands.js';
import { devicesCommands } from './commands/devices-commands.js';
import { firmwareCommands } from './commands/firmware-commands.js';
import { DeviceRegistry } from './devices/index.js';
import { DownloadTokens, serveDownload } from './download.js';
import { systemCommands } from './commands/system-commands.js';
import type { CommandHandler } from './commands/types.js';
import { gatewaySettingsSchema } from './settings.js';
import { startGatewayServer, type GatewayServer } from './ws/server.js';

export const GATEWAY_SERVICE = 'gateway';
export const KILN_VERSION = '0.1.0';

export interface GatewayService extends KilnService {
  /** The bound server once started (URL, connection and stream counts). */
  readonly server: GatewayServer | undefined;
}

/** The HTTP + WebSocket API: upstream device-builder protocol onto Kiln's contracts. */
export function createGatewayService(deps: ServiceDeps): GatewayService {
  const settings = deps.config.section(GATEWAY_SERVICE, gatewaySettingsSchema);
  const firmware = createFirmwareBusClient(deps.bus);
  const commands: Record<string, CommandHandler> = { ...authCommands, ...systemCommands, ...firmwareCommands, ...devicesCommands };
  const devices = new DeviceRegistry({ configDir: deps.config.core.configDir });
  const downloads = new DownloadTokens();
  const auth = new Authenticator(settings.username, settings.password);
  let server: GatewayServer | undefined;
  return {
    name: GATEWAY_SERVICE,
    get server() {
      return server;
    },
    async start() {
      // The config dir is where devices live; a fresh install starts with an empty one.
      await mkdir(deps.config.core.configDir, { recursive: true });
      await devices.start();
      server = await startGatewayServer({
        listen: settings.listen,
        maxMessageBytes: settings.maxMessageBytes,
        commands,
        logger: deps.logger,
        http: async (req, res) => {
          if (req.method !== 'GET' || new URL(req.url ?? '/', 'http://localhost').pathname !== '/api/firmware/download') return false;
          await serveDownload(req, res, downloads, firmware);
          return true;
        },
        context: (port) => ({
          firmware,
          devices,
          downloads,
          auth,
          bus: deps.bus,
          streamCapacity: settings.streamCapacity,
          serverInfo: () => ({ kiln_version: KILN_VERSION, api: 'esphome-device-builder', port }),
        }),
      });
      deps.logger.info({ url: server.url, login: auth.required ? 'password' : 'none' }, 'gateway listening (WebSocket API on /ws)');
    },
    async stop() {
      await server?.close();
      server = undefined;
      devices.stop();
    },
    health: () => ({ ok: true, detail: { url: server?.url ?? '', connections: String(server?.connectionCount() ?? 0), streams: String(server?.streamCount() ?? 0) } }),
  };
}
