import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SIM_BIN } from '@kiln/esphome-sim';
import { startKiln, tempDataDir, type Running } from './cli-harness.js';

/** The one-shot pairing key every test receiver is started with (headless pairing). */
export const PAIRING_KEY = 'one-shot-pairing-key-0123456789';

export type Cleanups = Array<() => Promise<unknown> | void>;

export interface ReceiverProcess {
  kiln: Running;
  dir: string;
  configDir: string;
  /** Its gRPC address (a new ephemeral port after each restart). */
  address: string;
  /** A file holding PAIRING_KEY (for `kiln pair --pairing-key-file`). */
  keyFile: string;
  /** Start `kiln receiver` again on the same dirs (after it died); `kiln` and `address` follow it. */
  restart(): Promise<Running>;
}

export const deviceYaml = (name: string): string => `esphome:\n  name: ${name}\nesp32:\n  board: esp32dev\n`;

/**
 * `kiln receiver` as its own process (simulator toolchain with `knobs`: an object, or the path of a
 * knobs file the simulator reads at each run), headless: paired with a one-shot key.
 */
export async function startReceiverProcess(cleanups: Cleanups, knobs: object | string = { default: { compileMs: 300, steps: 5 } }): Promise<ReceiverProcess> {
  const { dir, cleanup } = await tempDataDir();
  cleanups.push(cleanup);
  const keyFile = join(dir, 'pairing.key');
  await writeFile(keyFile, PAIRING_KEY, { mode: 0o600 });
  const configDir = join(dir, 'config');
  const start = (): Running => {
    const kiln = startKiln(
      ['receiver', '--config-dir', configDir, '--set', 'supervisor.healthListen=127.0.0.1:0', '--set', 'receiver.grpcListen=127.0.0.1:0', '--set', `receiver.pairingKeyFile=${keyFile}`, '--set', `receiver.toolchain=${SIM_BIN}`],
      dir,
      typeof knobs === 'string' ? { ESPHOME_SIM_KNOBS: knobs } : { ESPHOME_SIM_KNOBS_JSON: JSON.stringify(knobs) },
    );
    cleanups.push(() => kiln.stop());
    return kiln;
  };
  const grpcAddress = async (kiln: Running): Promise<string> => {
    const health = (await (await fetch(`${await kiln.healthUrl()}/health`)).json()) as { services: Array<{ health?: { detail?: Record<string, string> } }> };
    return health.services[0]!.health!.detail!.grpc!;
  };
  const kiln = start();
  const receiver: ReceiverProcess = {
    kiln,
    dir,
    configDir,
    keyFile,
    address: await grpcAddress(kiln),
    async restart() {
      const again = start();
      receiver.address = await grpcAddress(again);
      receiver.kiln = again;
      return again;
    },
  };
  return receiver;
}
