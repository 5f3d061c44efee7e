import { once } from 'node:events';

/**
 * Output with backpressure: when the reader is slow the pipe fills and we wait for 'drain',
 * exactly like a real toolchain blocking on write(2). Each call is one write, so lines reach
 * the reader as they happen rather than at exit.
 */
export async function write(text: string, stream: NodeJS.WriteStream = process.stdout): Promise<void> {
  if (!stream.write(text)) await once(stream, 'drain');
}

export function line(text: string): Promise<void> {
  return write(`${text}\n`);
}

export function errLine(text: string): Promise<void> {
  return write(`${text}\n`, process.stderr);
}

/**
 * Knob durations are wall time from the start of the phase (for the first phase, the start of the
 * process): node's startup and timer overshoot fall inside `compileMs`/`uploadMs` instead of adding
 * to them, so a benchmark's "compile 2 s" is a 2 s process.
 */
let phaseStart = performance.timeOrigin;
const now = (): number => performance.timeOrigin + performance.now();

export function startPhase(): void {
  phaseStart = now();
}

/** Sleep until `ms` after the phase started (at once when that moment has passed). */
export function sleepUntilPhase(ms: number): Promise<void> {
  return sleep(Math.max(0, phaseStart + ms - now()));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Never resolves, and keeps the event loop alive: the simulated phase is stuck until a signal ends it. */
export function hangForever(): Promise<never> {
  return new Promise<never>(() => {
    setInterval(() => undefined, 1 << 30);
  });
}

// A reader that goes away must not crash the simulator with an unhandled EPIPE; a real toolchain dies quietly too.
export function exitQuietlyOnBrokenPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', () => process.exit(1));
  }
}
