import { busClient, catalogPb, createLogStoreBusClient, devicesPb, firmwarePb, KILN_VERSION, remotePb, type KilnService, type ServiceDeps } from '@kiln/contracts';
import { Authenticator } from './auth.js';
import { gatewayCommands } from './commands/index.js';
import { DownloadTokens, serveDownload } from './download.js';
import { gatewaySettingsSchema } from './settings.js';
import { staticFiles } from './static-files.js';
import { startGatewayServer, type GatewayServer } from './ws/server.js';

export const GATEWAY_SERVICE = 'gateway';

export interface GatewayService extends KilnService {
  /** The bound server once started (URL, connection and stream counts). */
  readonly server: GatewayServer | undefined;
}

export interface GatewayOptions {
  /**
   * The built web page to serve at `/` when the `gateway.webRoot` setting is not given. The host
   * passes it (the gateway never imports the page's package); without either, `/` is a plain-text hint.
   */
  defaultWebRoot?: string;
}

/** The HTTP + WebSocket API: upstream device-builder protocol onto Kiln's contracts, and the web page. */
export function createGatewayService(deps: ServiceDeps, options: GatewayOptions = {}): GatewayService {
  const settings = deps.config.section(GATEWAY_SERVICE, gatewaySettingsSchema);
  const webRoot = settings.webRoot !== undefined ? deps.config.resolvePath(settings.webRoot) : options.defaultWebRoot;
  const web = webRoot ? staticFiles(webRoot) : undefined;
  const firmware = busClient(deps.bus, firmwarePb.FirmwareServiceDefinition);
  const catalog = busClient(deps.bus, catalogPb.CatalogServiceDefinition);
  const logs = createLogStoreBusClient(deps.bus);
  const remoteJobs = busClient(deps.bus, firmwarePb.RemoteJobServiceDefinition);
  const offloader = busClient(deps.bus, remotePb.OffloaderServiceDefinition);
  const receiver = busClient(deps.bus, remotePb.ReceiverControlServiceDefinition);
  const devices = busClient(deps.bus, devicesPb.DevicesServiceDefinition);
  const downloads = new DownloadTokens();
  const auth = new Authenticator(settings.username, settings.password);
  let server: GatewayServer | undefined;
  return {
    name: GATEWAY_SERVICE,
    get server() {
      return server;
    },
    async start() {
      server = await startGatewayServer({
        listen: settings.listen,
        maxMessageBytes: settings.maxMessageBytes,
        commands: gatewayCommands,
        logger: deps.logger,
        http: async (req, res) => {
          if (req.method === 'GET' && new URL(req.url ?? '/', 'http://localhost').pathname === '/api/firmware/download') {
            await serveDownload(req, res, downloads, firmware);
            return true;
          }
          return web ? web(req, res) : false;
        },
        context: (port) => ({
          firmware,
          logs,
          catalog,
          remoteJobs,
          offloader,
          receiver,
          devices,
          downloads,
          auth,
          bus: deps.bus,
          streamCapacity: settings.streamCapacity,
          streamMaxBytes: settings.streamMaxBytes,
          serverInfo: () => ({ kiln_version: KILN_VERSION, api: 'esphome-device-builder', port }),
        }),
      });
      deps.logger.info({ url: server.url, login: auth.required ? 'password' : 'none', webRoot: webRoot ?? null }, 'gateway listening (WebSocket API on /ws)');
    },
    async stop() {
      await server?.close();
      server = undefined;
    },
    health: () => ({ ok: true, detail: { url: server?.url ?? '', connections: String(server?.connectionCount() ?? 0), streams: String(server?.streamCount() ?? 0) } }),
  };
}
