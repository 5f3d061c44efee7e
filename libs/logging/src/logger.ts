import { Writable } from 'node:stream';
import { pino, type DestinationStream, type Level, type Logger } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  level?: Level | 'silent';
  /** Pretty, human-readable lines; default: when stdout is a terminal. */
  pretty?: boolean;
  /** Where JSON lines go; default stdout. Tests pass a sink. */
  destination?: DestinationStream;
  /** Static fields on every line (e.g. `process: 'supervise'`). */
  base?: Record<string, unknown>;
}

/**
 * The root logger of a process. Services get `child({ service })`, so every line says which
 * service wrote it whether it runs alone or hosted. Pretty output is formatted in-process
 * (pino-pretty as a stream, loaded only for a terminal) to avoid a transport worker thread's memory.
 */
export async function createRootLogger(options: LoggerOptions = {}): Promise<Logger> {
  const pretty = options.pretty ?? (process.stdout.isTTY === true && options.destination === undefined);
  const pinoOptions = { level: options.level ?? 'info', base: { pid: process.pid, ...options.base } };
  if (pretty) {
    const { default: prettyStream } = await import('pino-pretty');
    return pino(pinoOptions, prettyStream({ colorize: true, ignore: 'pid,hostname', messageFormat: '[{service}] {msg}' }));
  }
  return pino(pinoOptions, options.destination ?? pino.destination({ sync: false }));
}

export function serviceLogger(root: Logger, service: string): Logger {
  return root.child({ service });
}

/** A destination that keeps parsed JSON records in memory: for tests that assert on log lines. */
export function memoryDestination(): DestinationStream & { records: Array<Record<string, unknown>> } {
  const records: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) records.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return Object.assign(stream, { records });
}
