import type { Bus } from '@kiln/bus';
import type { BusClient, catalogPb, devicesPb, firmwarePb, LogStoreApi, remotePb } from '@kiln/contracts';
import type { EventStream } from '@kiln/streams';
import type { Authenticator } from '../auth.js';
import type { DownloadTokens } from '../download.js';

/** One item a stream command sends: an event frame, or the final result that ends the stream. */
export type StreamItem = { event: string; data: unknown } | { result: unknown };

export type CommandOutcome = { result: unknown } | { stream: EventStream<StreamItem> };

export interface CommandContext {
  firmware: BusClient<firmwarePb.FirmwareServiceDefinition>;
  /** Job output: read and followed at its owner. */
  logs: LogStoreApi;
  catalog: BusClient<catalogPb.CatalogServiceDefinition>;
  /** Builds sent to one receiver, served by the firmware service. */
  remoteJobs: BusClient<firmwarePb.RemoteJobServiceDefinition>;
  /** Offloader control, served by the firmware service. */
  offloader: BusClient<remotePb.OffloaderServiceDefinition>;
  /** Receiver control, served by a hosted receiver (if any). */
  receiver: BusClient<remotePb.ReceiverControlServiceDefinition>;
  /** The devices service (the config dir's owner). */
  devices: BusClient<devicesPb.DevicesServiceDefinition>;
  downloads: DownloadTokens;
  auth: Authenticator;
  bus: Bus;
  /** Per stream: live events a client may lag behind by. */
  streamCapacity: number;
  /** Per stream: live bytes a client may lag behind by, counting what its socket still holds. */
  streamMaxBytes: number;
  serverInfo(): Record<string, unknown>;
}

/** Per-connection state a command may read or change (login). */
export interface Session {
  authenticated: boolean;
  token: string | undefined;
  /** Ask the connection to close after the reply (auth/logout). */
  closeAfterReply: boolean;
  /** Bytes this client's socket holds unsent (ws.bufferedAmount): a stream counts them against its byte bound. */
  readonly bufferedBytes: () => number;
}

export type CommandHandler = (ctx: CommandContext, args: Record<string, unknown>, session: Session) => Promise<CommandOutcome>;
