import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInProcessBus, type Bus } from '@kiln/bus';
import { loadConfig } from '@kiln/config';
import { busClient, remotePb as pb } from '@kiln/contracts';
import { createReceiverClient, previewReceiver, type ReceiverClient } from '@kiln/contracts/grpc';
import type { Clock } from '@kiln/core';
import { SIM_BIN } from '@kiln/esphome-sim';
import { createRootLogger, type LoggerOptions } from '@kiln/logging';
import { loadOrCreateIdentity, packBundle, type PeerIdentity } from '@kiln/remote-identity';
import { Toolchain } from '@kiln/toolchain';
import { afterEach } from 'vitest';
import { createReceiverService, type ReceiverService } from '../src/index.js';

/** Receiver control over the bus, as the gateway and the CLI reach it. */
const control = (bus: Bus) => busClient(bus, pb.ReceiverControlServiceDefinition);

export type Knobs = Record<string, unknown>;

/** A clock tests can move forward (the sweep's notion of "cold"). */
export class TestClock implements Clock {
  offsetMs = 0;
  now(): number {
    return Date.now() + this.offsetMs;
  }
}

export interface ReceiverHarness {
  root: string;
  dataDir: string;
  configDir: string;
  bus: Bus;
  service: ReceiverService;
  address: string;
  clock: TestClock;
  /** A fresh offloader identity (its own dir under root). */
  offloader(name: string): Promise<PeerIdentity>;
  /** Preview, open the window, request, approve over the bus: a client ready to build. */
  paired(identity: PeerIdentity): Promise<ReceiverClient>;
  client(identity: PeerIdentity, pin?: string): ReceiverClient;
  /** Stop the receiver and start a new one on the same dirs (a new port). */
  restart(): Promise<void>;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

export async function startReceiver(
  options: { settings?: Record<string, string>; knobs?: { default?: Knobs; devices?: Record<string, Knobs> }; logs?: NonNullable<LoggerOptions['destination']> } = {},
): Promise<ReceiverHarness> {
  const root = await mkdtemp(join(tmpdir(), 'kiln-receiver-'));
  const dataDir = join(root, 'data');
  const configDir = join(root, 'config');
  const settings = { 'receiver.grpcListen': '127.0.0.1:0', ...options.settings };
  const config = await loadConfig({
    env: { HOME: '/nonexistent' },
    flags: [
      { path: 'dataDir', value: dataDir, flag: '--data-dir' },
      { path: 'configDir', value: configDir, flag: '--config-dir' },
      ...Object.entries(settings).map(([path, value]) => ({ path, value, flag: `--set ${path}` })),
    ],
  });
  const bus = createInProcessBus();
  const clock = new TestClock();
  const knobs = { default: { compileMs: 100, steps: 5, ...options.knobs?.default }, devices: options.knobs?.devices ?? {} };
  const toolchain = new Toolchain({ command: [SIM_BIN], killGraceMs: 2_000, env: { ESPHOME_SIM_KNOBS_JSON: JSON.stringify(knobs) } });
  const logger = await createRootLogger(options.logs ? { level: 'info', pretty: false, destination: options.logs } : { level: 'silent', pretty: false });
  const create = (): ReceiverService => createReceiverService({ name: 'receiver', bus, config, logger, fail: (e) => { throw e; } }, { clock, toolchain });
  let service = create();
  await service.start();
  const clients: ReceiverClient[] = [];
  cleanups.push(async () => {
    clients.forEach((c) => c.close());
    await service.stop();
    await rm(root, { recursive: true, force: true });
  });
  const client = (identity: PeerIdentity, pin = service.receiver.identity.fingerprint): ReceiverClient => {
    const c = createReceiverClient({ address: harness.address, identity, pin });
    clients.push(c);
    return c;
  };
  const harness: ReceiverHarness = {
    root,
    dataDir,
    configDir,
    bus,
    service,
    address: service.grpcAddress!,
    clock,
    client,
    async restart() {
      await service.stop();
      service = create();
      await service.start();
      harness.service = service;
      harness.address = service.grpcAddress!;
    },
    offloader: (name) => loadOrCreateIdentity(join(root, 'offloaders', name), name),
    async paired(identity) {
      const preview = await previewReceiver(harness.address, identity);
      await control(bus).setPairingWindow({ open: true, timeoutS: 60 });
      const c = client(identity, preview.pin);
      const requested = await c.requestPair();
      if (requested.state !== pb.PairState.PAIR_STATE_PENDING) throw new Error(`expected pending, got ${requested.state}`);
      await control(bus).approvePeer({ peer: identity.dashboardId });
      await control(bus).setPairingWindow({ open: false, timeoutS: 0 });
      return c;
    },
  };
  return harness;
}

/** A device YAML the simulator accepts; `extra` changes its content (and so its firmware bytes). */
export function deviceYaml(name: string, extra = ''): string {
  return `esphome:\n  name: ${name}\n  friendly_name: ${name}\nesp32:\n  board: esp32dev\nlogger:\n${extra}`;
}

export function bundleFor(configuration: string, yaml: string): Promise<Buffer> {
  return packBundle([
    { name: configuration, data: yaml },
    { name: 'secrets.yaml', data: 'wifi_ssid: test\n' },
  ]);
}

export async function writeKeyFile(path: string, key: string): Promise<void> {
  await writeFile(path, `${key}\n`, { mode: 0o600 });
}

/** Drain a follow stream; returns the final state and every output line. */
export async function followToEnd(client: ReceiverClient, buildId: string): Promise<{ final: pb.BuildState | undefined; lines: string[]; states: pb.BuildStatus[] }> {
  let final: pb.BuildState | undefined;
  const lines: string[] = [];
  const states: pb.BuildStatus[] = [];
  for await (const event of client.follow(buildId)) {
    if (event.$case === 'state') {
      final = event.value;
      states.push(event.value.status);
    } else lines.push(...event.value.lines);
  }
  return { final, lines, states };
}
