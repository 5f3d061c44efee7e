import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bus } from '@kiln/bus';
import { loadConfig, v } from '@kiln/config';
import { createRootLogger } from '@kiln/logging';
import type { LogFollowEvent } from '@kiln/contracts';
import { createLogStoreService, LogStore, logStoreSettingsSchema, type LogStoreService } from '../src/index.js';

export async function tempDir(): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-logstore-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export const silentLogger = () => createRootLogger({ level: 'silent', pretty: false });

export async function makeStore(dir: string, overrides: Record<string, unknown> = {}): Promise<LogStore> {
  const settings = v.parse(logStoreSettingsSchema, { flushIntervalMs: 5, ...overrides });
  const store = new LogStore(join(dir, 'job-logs'), settings, await silentLogger());
  await store.init();
  return store;
}

export async function startService(bus: Bus, dataDir: string, grpcListen = 'off'): Promise<LogStoreService> {
  const config = await loadConfig({
    env: { HOME: '/nonexistent' },
    flags: [
      { path: 'dataDir', value: dataDir, flag: '--data-dir' },
      { path: 'logstore.grpcListen', value: grpcListen, flag: '--set' },
      { path: 'logstore.flushIntervalMs', value: '5', flag: '--set' },
    ],
  });
  const service = createLogStoreService({ name: 'logstore', bus, config, logger: await silentLogger(), fail: (e) => { throw e; } });
  await service.start();
  return service;
}

/** Drain a follow stream into the flat list of lines (with their sequence numbers) plus whether it closed. */
export async function collect(stream: AsyncIterable<LogFollowEvent>): Promise<{ seqs: number[]; lines: string[]; closed: number | undefined }> {
  const seqs: number[] = [];
  const lines: string[] = [];
  let closed: number | undefined;
  for await (const event of stream) {
    if (event.$case === 'closed') closed = event.value.lineCount;
    else event.value.lines.forEach((line, i) => (seqs.push(event.value.firstSeq + i), lines.push(line)));
  }
  return { seqs, lines, closed };
}

export const numbered = (from: number, count: number, prefix = 'line') => Array.from({ length: count }, (_, i) => `${prefix} ${from + i}`);
