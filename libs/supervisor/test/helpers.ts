import { createInProcessBus, type Bus } from '@kiln/bus';
import { loadConfig, v } from '@kiln/config';
import type { KilnService, ServiceDefinition, ServiceDeps } from '@kiln/contracts';
import { deferred, type Deferred } from '@kiln/core';
import { createRootLogger, memoryDestination } from '@kiln/logging';
import { Supervisor, supervisorSettingsSchema, type SupervisorEvent, type SupervisorSettings } from '../src/index.js';

/** Fast timings so restart ladders run in milliseconds; the ratios are what the tests pin. */
export const FAST: Partial<SupervisorSettings> = {
  restartInitialMs: 10,
  restartMaxMs: 40,
  stableMs: 60_000,
  maxRestarts: 5,
  restartWindowMs: 60_000,
  startTimeoutMs: 2_000,
  stopTimeoutMs: 200,
  heartbeatMs: 100,
  healthListen: 'off',
};

export interface FakeBehaviour {
  /** Called on every start; throw or reject to fail the start. */
  onStart?(run: number, deps: ServiceDeps): Promise<void> | void;
  onStop?(run: number): Promise<void> | void;
}

export interface Recorder {
  log: string[];
  deps: Map<string, ServiceDeps>;
}

export function fakeDefinition(name: string, dependsOn: string[], recorder: Recorder, behaviour: FakeBehaviour = {}): ServiceDefinition & { loads: number } {
  let starts = 0;
  const definition = {
    name,
    dependsOn,
    description: `test service ${name}`,
    loads: 0,
    async load() {
      definition.loads++;
      return (deps: ServiceDeps): KilnService => {
        const run = ++starts;
        recorder.deps.set(name, deps);
        return {
          name,
          async start() {
            recorder.log.push(`start ${name} #${run}`);
            await behaviour.onStart?.(run, deps);
            recorder.log.push(`started ${name} #${run}`);
          },
          async stop() {
            recorder.log.push(`stop ${name} #${run}`);
            await behaviour.onStop?.(run);
          },
          health: () => ({ ok: true, detail: { run: String(run) } }),
        };
      };
    },
  };
  return definition;
}

export interface Harness {
  supervisor: Supervisor;
  bus: Bus;
  events: SupervisorEvent[];
  fatal: Error[];
  recorder: Recorder;
  waitFor(predicate: (e: SupervisorEvent) => boolean): Promise<SupervisorEvent>;
}

export async function harness(
  definitions: (recorder: Recorder) => ServiceDefinition[],
  hosted: string[],
  settings: Partial<SupervisorSettings> = {},
): Promise<Harness> {
  const recorder: Recorder = { log: [], deps: new Map() };
  const bus = createInProcessBus();
  const config = await loadConfig({ env: { HOME: '/nonexistent' } });
  const logger = await createRootLogger({ destination: memoryDestination(), pretty: false });
  const events: SupervisorEvent[] = [];
  const fatal: Error[] = [];
  const waiters: Array<{ predicate: (e: SupervisorEvent) => boolean; done: Deferred<SupervisorEvent> }> = [];
  const supervisor = new Supervisor({
    definitions: definitions(recorder),
    hosted,
    settings: v.parse(supervisorSettingsSchema, { ...FAST, ...settings }),
    bus,
    config,
    logger,
    onFatal: (e) => fatal.push(e),
  });
  supervisor.onEvent((event) => {
    events.push(event);
    for (const w of [...waiters]) {
      if (w.predicate(event)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.done.resolve(event);
      }
    }
  });
  return {
    supervisor,
    bus,
    events,
    fatal,
    recorder,
    waitFor(predicate) {
      const found = events.find(predicate);
      if (found) return Promise.resolve(found);
      const done = deferred<SupervisorEvent>();
      waiters.push({ predicate, done });
      return done.promise;
    },
  };
}
