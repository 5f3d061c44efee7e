import type { Bus } from '@kiln/bus';
import type { FirmwareApi } from '@kiln/contracts';
import type { EventStream } from '@kiln/streams';
import type { DeviceRegistry } from '../devices/index.js';
import type { DownloadTokens } from '../download.js';

/** One item a stream command sends: an event frame, or the final result that ends the stream. */
export type StreamItem = { event: string; data: unknown } | { result: unknown };

export type CommandOutcome = { result: unknown } | { stream: EventStream<StreamItem> };

export interface CommandContext {
  firmware: FirmwareApi;
  devices: DeviceRegistry;
  downloads: DownloadTokens;
  bus: Bus;
  streamCapacity: number;
  serverInfo(): Record<string, unknown>;
}

export type CommandHandler = (ctx: CommandContext, args: Record<string, unknown>) => Promise<CommandOutcome>;
