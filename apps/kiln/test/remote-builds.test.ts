import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { remotePb as pb } from '@kiln/contracts';
import { createReceiverClient, previewReceiver, type ReceiverClient } from '@kiln/contracts/grpc';
import { loadOrCreateIdentity, packBundle, type PeerIdentity } from '@kiln/remote-identity';
import { FLASH_LAYOUT_ARTIFACT, PLATFORMIO_INI_ARTIFACT, processAlive } from '@kiln/toolchain';
import { resolveBuildPaths } from '@kiln/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDataDir } from './cli-harness.js';
import { deviceYaml, PAIRING_KEY, startReceiverProcess as startReceiver, type Cleanups, type ReceiverProcess } from './remote-harness.js';

const { BUILD_ACTION_COMPILE: COMPILE } = pb.BuildAction;
const { BUILD_STATUS_COMPLETED: COMPLETED, BUILD_STATUS_CANCELLED: CANCELLED } = pb.BuildStatus;
const cleanups: Cleanups = [];
let offloader: PeerIdentity;
beforeEach(async () => {
  const { dir, cleanup } = await tempDataDir();
  cleanups.push(cleanup);
  offloader = await loadOrCreateIdentity(join(dir, 'offloader'), 'office');
});
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const startReceiverProcess = (knobs?: object): Promise<ReceiverProcess> => startReceiver(cleanups, knobs);

async function pairWith(receiver: ReceiverProcess): Promise<ReceiverClient> {
  const { pin } = await previewReceiver(receiver.address, offloader);
  const client = createReceiverClient({ address: receiver.address, identity: offloader, pin });
  cleanups.push(() => client.close());
  expect((await client.requestPair({ pairingKey: PAIRING_KEY })).state).toBe(pb.PairState.PAIR_STATE_APPROVED);
  return client;
}

const yaml = deviceYaml;

async function compile(client: ReceiverClient, name: string): Promise<{ build: pb.BuildState; final: pb.BuildState | undefined }> {
  const { sha256 } = await client.submitBundle(await packBundle([{ name: `${name}.yaml`, data: yaml(name) }]));
  const build = await client.startBuild({ bundleSha256: sha256, configuration: `${name}.yaml`, action: COMPILE });
  let final: pb.BuildState | undefined;
  for await (const event of client.follow(build.buildId)) if (event.$case === 'state') final = event.value;
  return { build, final };
}

describe('remote builds across processes (two kiln receiver processes, real gRPC on loopback)', () => {
  it('four compiles run in parallel across both receivers and come back byte for byte', async () => {
    const receivers = await Promise.all([startReceiverProcess(), startReceiverProcess()]);
    const clients = await Promise.all(receivers.map(pairWith));
    const devices = ['a1', 'a2', 'b1', 'b2'];
    // Watch both compile lanes: the point is that both receivers work at the same time.
    const running = [0, 0];
    let overlapped = false;
    const watchers = clients.map((c, r) =>
      (async () => {
        for await (const status of c.queueStatus()) {
          running[r] = status.running;
          overlapped ||= running[0]! > 0 && running[1]! > 0;
        }
      })().catch(() => undefined),
    );
    const results = await Promise.all(devices.map((d, i) => compile(clients[i % 2]!, d)));
    expect(overlapped).toBe(true);
    void watchers;
    for (const [i, { build, final }] of results.entries()) {
      expect(final?.status).toBe(COMPLETED);
      const receiver = receivers[i % 2]!;
      const images = await clients[i % 2]!.downloadArtifacts(build.buildId);
      const paths = resolveBuildPaths(receiver.configDir, `${devices[i]}.yaml`, { dashboardId: offloader.dashboardId });
      const dir = paths.firmwareDir(devices[i]!);
      expect(images.length).toBeGreaterThanOrEqual(3);
      const reserved = [FLASH_LAYOUT_ARTIFACT, PLATFORMIO_INI_ARTIFACT];
      for (const image of images.filter((f) => !reserved.includes(f.name))) expect(image.data.equals(await readFile(join(dir, image.name)))).toBe(true);
      expect(images.map((f) => f.name)).toEqual(expect.arrayContaining(reserved));
      expect(images.find((f) => f.name === PLATFORMIO_INI_ARTIFACT)!.data.equals(await readFile(paths.platformioIni(devices[i]!)))).toBe(true);
    }
  });

  it('a receiver killed mid-build is reported lost at once, and the build can go to the other one', async () => {
    // A long compile rather than a hang: the killed receiver's orphaned compile ends by itself.
    const doomed = await startReceiverProcess({ default: { compileMs: 10_000, steps: 50 } });
    const healthy = await startReceiverProcess();
    const [lost, spare] = await Promise.all([pairWith(doomed), pairWith(healthy)]);
    const { sha256 } = await lost.submitBundle(await packBundle([{ name: 'porch.yaml', data: yaml('porch') }]));
    const build = await lost.startBuild({ bundleSha256: sha256, configuration: 'porch.yaml', action: COMPILE });
    const follow = (async () => {
      for await (const event of lost.follow(build.buildId)) if (event.$case === 'state' && event.value.status === pb.BuildStatus.BUILD_STATUS_RUNNING) doomed.kiln.child.kill('SIGKILL');
    })();
    await expect(follow).rejects.toMatchObject({ code: 'unavailable' });
    const retried = await compile(spare, 'porch');
    expect(retried.final?.status).toBe(COMPLETED);
  });

  it('cancel from the offloader kills the compile process tree in the receiver process', async () => {
    const receiver = await startReceiverProcess({ default: { hang: 'compile', spawnChild: true } });
    const client = await pairWith(receiver);
    const { sha256 } = await client.submitBundle(await packBundle([{ name: 'porch.yaml', data: yaml('porch') }]));
    const build = await client.startBuild({ bundleSha256: sha256, configuration: 'porch.yaml', action: COMPILE });
    const pidFile = join(resolveBuildPaths(receiver.configDir, 'porch.yaml', { dashboardId: offloader.dashboardId }).dataDir, 'sim-child.pid');
    let pid = 0;
    for (let i = 0; i < 400 && !pid; i++) {
      pid = Number(await readFile(pidFile, 'utf8').catch(() => '')) || 0;
      if (!pid) await new Promise((r) => setTimeout(r, 25));
    }
    expect(processAlive(pid)).toBe(true);
    await client.cancel(build.buildId);
    let final: pb.BuildState | undefined;
    for await (const event of client.follow(build.buildId)) if (event.$case === 'state') final = event.value;
    expect(final?.status).toBe(CANCELLED);
    expect(processAlive(pid)).toBe(false);
  });

  it('a compile orphaned by a killed receiver is killed when the receiver starts again', async () => {
    // 4 steps: the simulator prints "[1/4] …" and then hangs without writing again, so losing its
    // reader (the receiver) cannot end it through a broken pipe: it stays orphaned until reaped.
    const receiver = await startReceiverProcess({ default: { hang: 'compile', spawnChild: true, steps: 4 } });
    const client = await pairWith(receiver);
    const { sha256 } = await client.submitBundle(await packBundle([{ name: 'porch.yaml', data: yaml('porch') }]));
    const build = await client.startBuild({ bundleSha256: sha256, configuration: 'porch.yaml', action: COMPILE });
    for await (const event of client.follow(build.buildId)) if (event.$case === 'output' && event.value.lines.some((l) => l.startsWith('[1/4]'))) break;
    const markers = join(receiver.dir, 'receiver', 'running');
    const pidFile = join(resolveBuildPaths(receiver.configDir, 'porch.yaml', { dashboardId: offloader.dashboardId }).dataDir, 'sim-child.pid');
    let pgid = 0;
    let childPid = 0;
    for (let i = 0; i < 400 && !(pgid && childPid); i++) {
      const [marker] = await readdir(markers).catch(() => [] as string[]);
      if (marker) pgid = (JSON.parse(await readFile(join(markers, marker), 'utf8')) as { pgid: number }).pgid;
      childPid = Number(await readFile(pidFile, 'utf8').catch(() => '')) || 0;
      if (!(pgid && childPid)) await new Promise((r) => setTimeout(r, 25));
    }
    receiver.kiln.child.kill('SIGKILL');
    await receiver.kiln.exited;
    // The receiver is gone, its compile is not.
    expect(processAlive(pgid)).toBe(true);
    expect(processAlive(childPid)).toBe(true);

    await receiver.restart();
    expect(processAlive(pgid)).toBe(false);
    expect(processAlive(childPid)).toBe(false);
    expect(await readdir(markers)).toEqual([]);
  });
});
