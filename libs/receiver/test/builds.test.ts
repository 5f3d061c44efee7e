import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { remotePb as pb } from '@kiln/contracts';
import { FLASH_LAYOUT_ARTIFACT, PLATFORMIO_INI_ARTIFACT, processAlive } from '@kiln/toolchain';
import { remoteBuildsRoot, resolveBuildPaths } from '@kiln/core';
import { bundleFor, deviceYaml, followToEnd, startReceiver } from './harness.js';

const { BUILD_ACTION_COMPILE: COMPILE, BUILD_ACTION_UPLOAD: UPLOAD } = pb.BuildAction;
const { BUILD_STATUS_COMPLETED: COMPLETED, BUILD_STATUS_CANCELLED: CANCELLED, BUILD_STATUS_RUNNING: RUNNING } = pb.BuildStatus;

async function waitFor<T>(check: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('remote builds', () => {
  it('compiles in the offloader\'s own build dir and serves the images byte for byte', async () => {
    const h = await startReceiver();
    const offloader = await h.offloader('office');
    const client = await h.paired(offloader);
    const { sha256, sent } = await client.submitBundle(await bundleFor('kitchen.yaml', deviceYaml('kitchen')));
    expect(sent).toBe(true);
    const build = await client.startBuild({ bundleSha256: sha256, configuration: 'kitchen.yaml', action: COMPILE });
    const { final, lines, states } = await followToEnd(client, build.buildId);
    expect(final).toMatchObject({ status: COMPLETED, exitCode: 0, progress: 100, deviceName: 'kitchen' });
    expect(states).toContain(COMPLETED);
    expect(lines.some((l) => l.includes('simulated toolchain'))).toBe(true);

    const paths = resolveBuildPaths(h.configDir, 'kitchen.yaml', { dashboardId: offloader.dashboardId });
    expect(paths.dataDir).toBe(join(remoteBuildsRoot(h.configDir), offloader.dashboardId, 'kitchen'));
    const artifacts = await client.downloadArtifacts(build.buildId);
    expect(artifacts.map((a) => a.name)).toEqual(expect.arrayContaining(['firmware.bin', 'firmware.factory.bin', 'firmware.ota.bin']));
    for (const artifact of artifacts.filter((a) => a.name !== FLASH_LAYOUT_ARTIFACT && a.name !== PLATFORMIO_INI_ARTIFACT)) {
      expect(artifact.data.equals(await readFile(join(paths.firmwareDir('kitchen'), artifact.name)))).toBe(true);
    }
    // The build's platformio.ini travels too: without it the offloader's esphome would not trust the layout.
    const ini = artifacts.find((a) => a.name === PLATFORMIO_INI_ARTIFACT);
    expect(ini?.data.equals(await readFile(paths.platformioIni('kitchen')))).toBe(true);
    expect(ini?.data.toString('utf8')).toContain('[env:kitchen]');
    // Nothing of the remote build landed in the receiver's own (local) layout.
    expect(await readdir(join(h.configDir, '.esphome'))).toEqual(['.remote_builds']);
  });

  it('sends the flash layout with the images: names and offsets, an outside image under its own name, no receiver path', async () => {
    const h = await startReceiver();
    const offloader = await h.offloader('office');
    const client = await h.paired(offloader);
    const { sha256 } = await client.submitBundle(await bundleFor('kitchen.yaml', deviceYaml('kitchen')));
    const build = await client.startBuild({ bundleSha256: sha256, configuration: 'kitchen.yaml', action: COMPILE });
    expect((await followToEnd(client, build.buildId)).final?.status).toBe(COMPLETED);
    // As real esphome does for ESP32: one flash image lives in the framework package, outside the build.
    const paths = resolveBuildPaths(h.configDir, 'kitchen.yaml', { dashboardId: offloader.dashboardId });
    const framework = await mkdtemp(join(tmpdir(), 'kiln-framework-'));
    const bootApp = join(framework, 'boot_app0.bin');
    await writeFile(bootApp, Buffer.from('boot-app-0'));
    const ideData = JSON.parse(await readFile(paths.idedata('kitchen'), 'utf8')) as { prog_path: string; extra: { flash_images: { path: string; offset: string }[] } };
    ideData.extra.flash_images.push({ path: bootApp, offset: '0xe000' });
    await writeFile(paths.idedata('kitchen'), JSON.stringify(ideData));

    const artifacts = await client.downloadArtifacts(build.buildId);
    const layoutArtifact = artifacts.find((a) => a.name === FLASH_LAYOUT_ARTIFACT)!;
    const layoutText = layoutArtifact.data.toString('utf8');
    expect(layoutText).not.toContain(h.configDir);
    expect(layoutText).not.toContain(framework);
    const layout = JSON.parse(layoutText) as { flashImages: { name: string; offset: string }[] };
    expect(layout.flashImages.slice(0, 2)).toEqual([
      { name: 'bootloader.bin', offset: '0x1000' },
      { name: 'partitions.bin', offset: '0x8000' },
    ]);
    const outside = layout.flashImages[2]!;
    expect(outside.offset).toBe('0xe000');
    expect(outside.name).toMatch(/^extra-[0-9a-f]{12}-boot_app0\.bin$/);
    for (const { name } of layout.flashImages) expect(artifacts.map((a) => a.name)).toContain(name);
    expect(artifacts.find((a) => a.name === outside.name)!.data.toString()).toBe('boot-app-0');

    // A build dir without a platformio.ini (not one esphome left) still serves its images and layout, without an ini.
    await rm(paths.platformioIni('kitchen'));
    const withoutIni = (await client.downloadArtifacts(build.buildId)).map((a) => a.name);
    expect(withoutIni).toContain(FLASH_LAYOUT_ARTIFACT);
    expect(withoutIni).not.toContain(PLATFORMIO_INI_ARTIFACT);

    // A listed image that is gone fails the download by name instead of sending a layout that cannot be flashed.
    await rm(bootApp);
    await expect(client.downloadArtifacts(build.buildId)).rejects.toMatchObject({ code: 'not_found', message: expect.stringContaining(outside.name) });
    await rm(framework, { recursive: true, force: true });
  });

  it('an unchanged bundle is not sent again; a changed one is', async () => {
    const h = await startReceiver();
    const client = await h.paired(await h.offloader('office'));
    const bundle = await bundleFor('kitchen.yaml', deviceYaml('kitchen'));
    const first = await client.submitBundle(bundle);
    expect(first.sent).toBe(true);
    expect(await client.hasBundle(first.sha256)).toBe(true);
    expect(await client.submitBundle(await bundleFor('kitchen.yaml', deviceYaml('kitchen')))).toEqual({ sha256: first.sha256, sent: false });
    const changed = await client.submitBundle(await bundleFor('kitchen.yaml', deviceYaml('kitchen', 'api:\n')));
    expect(changed.sent).toBe(true);
    expect(changed.sha256).not.toBe(first.sha256);
  });

  it('two offloaders building the same device name never share a build dir (or images)', async () => {
    const h = await startReceiver({ settings: { 'receiver.compileSlots': '2' } });
    const a = await h.offloader('a');
    const b = await h.offloader('b');
    const [clientA, clientB] = [await h.paired(a), await h.paired(b)];
    const subA = await clientA.submitBundle(await bundleFor('kitchen.yaml', deviceYaml('kitchen', '# from a\n')));
    const subB = await clientB.submitBundle(await bundleFor('kitchen.yaml', deviceYaml('kitchen', '# from b\n')));
    const [buildA, buildB] = await Promise.all([
      clientA.startBuild({ bundleSha256: subA.sha256, configuration: 'kitchen.yaml', action: COMPILE }),
      clientB.startBuild({ bundleSha256: subB.sha256, configuration: 'kitchen.yaml', action: COMPILE }),
    ]);
    expect((await followToEnd(clientA, buildA.buildId)).final?.status).toBe(COMPLETED);
    expect((await followToEnd(clientB, buildB.buildId)).final?.status).toBe(COMPLETED);
    const dirA = resolveBuildPaths(h.configDir, 'kitchen.yaml', { dashboardId: a.dashboardId }).dataDir;
    const dirB = resolveBuildPaths(h.configDir, 'kitchen.yaml', { dashboardId: b.dashboardId }).dataDir;
    expect(dirA).not.toBe(dirB);
    const binA = (await clientA.downloadArtifacts(buildA.buildId)).find((f) => f.name === 'firmware.bin')!;
    const binB = (await clientB.downloadArtifacts(buildB.buildId)).find((f) => f.name === 'firmware.bin')!;
    // The simulator's firmware is a function of the YAML: each got the image of its own configuration.
    expect(binA.data.equals(binB.data)).toBe(false);
    expect(binA.data.equals(await readFile(join(dirA, 'build', 'kitchen', '.pioenvs', 'kitchen', 'firmware.bin')))).toBe(true);
    // And neither can see the other's build.
    await expect(clientA.downloadArtifacts(buildB.buildId)).rejects.toMatchObject({ code: 'not_found' });
    await expect(clientA.cancel(buildB.buildId)).rejects.toMatchObject({ code: 'not_found' });
    await expect(clientA.startBuild({ bundleSha256: subB.sha256, configuration: 'kitchen.yaml', action: COMPILE })).rejects.toMatchObject({ code: 'not_found' });
  });

  it('a newer build of the same device supersedes the one in flight (they would share a build dir)', async () => {
    const h = await startReceiver({ knobs: { devices: { kitchen: { hang: 'compile' } } } });
    const offloader = await h.offloader('office');
    const client = await h.paired(offloader);
    const { sha256 } = await client.submitBundle(await bundleFor('kitchen.yaml', deviceYaml('kitchen')));
    const first = await client.startBuild({ bundleSha256: sha256, configuration: 'kitchen.yaml', action: COMPILE });
    const firstFollow = followToEnd(client, first.buildId);
    await waitFor(() => h.service.receiver.builds.get(offloader.dashboardId, first.buildId).process);
    const second = await client.startBuild({ bundleSha256: sha256, configuration: 'kitchen.yaml', action: pb.BuildAction.BUILD_ACTION_CLEAN });
    expect((await firstFollow).final?.status).toBe(CANCELLED);
    const { final, lines } = await followToEnd(client, second.buildId);
    expect(final?.status).toBe(COMPLETED);
    // A late follower gets the whole story of a finished build: its state and the output so far.
    const late = await followToEnd(client, second.buildId);
    expect(late.final).toEqual(final);
    expect(late.lines).toEqual(lines);
  });

  it('refuses an upload: a receiver only compiles and cleans', async () => {
    const h = await startReceiver();
    const client = await h.paired(await h.offloader('office'));
    const { sha256 } = await client.submitBundle(await bundleFor('kitchen.yaml', deviceYaml('kitchen')));
    await expect(client.startBuild({ bundleSha256: sha256, configuration: 'kitchen.yaml', action: UPLOAD })).rejects.toMatchObject({
      code: 'failed_precondition',
      message: expect.stringMatching(/only compiles and cleans/),
    });
    await expect(client.startBuild({ bundleSha256: sha256, configuration: 'other.yaml', action: COMPILE })).rejects.toMatchObject({ code: 'invalid_args', message: expect.stringMatching(/not at the top of the bundle/) });
    expect(h.service.receiver.builds.laneStatus()).toMatchObject({ running: 0, depth: 0 });
  });

  it('cancel kills the build\'s whole process tree on the receiver', async () => {
    const h = await startReceiver({ knobs: { devices: { kitchen: { hang: 'compile', spawnChild: true } } } });
    const offloader = await h.offloader('office');
    const client = await h.paired(offloader);
    const { sha256 } = await client.submitBundle(await bundleFor('kitchen.yaml', deviceYaml('kitchen')));
    const build = await client.startBuild({ bundleSha256: sha256, configuration: 'kitchen.yaml', action: COMPILE });
    const follow = followToEnd(client, build.buildId);
    const dataDir = resolveBuildPaths(h.configDir, 'kitchen.yaml', { dashboardId: offloader.dashboardId }).dataDir;
    const childPid = await waitFor(async () => Number(await readFile(join(dataDir, 'sim-child.pid'), 'utf8').catch(() => '')) || undefined);
    const mainPid = h.service.receiver.builds.get(offloader.dashboardId, build.buildId).process?.pid;
    expect(mainPid).toBeDefined();
    expect(processAlive(childPid)).toBe(true);

    await client.cancel(build.buildId);
    const { final, states } = await follow;
    expect(states).toContain(RUNNING);
    expect(final?.status).toBe(CANCELLED);
    expect(processAlive(mainPid!)).toBe(false);
    expect(processAlive(childPid)).toBe(false);
    expect(h.service.receiver.builds.laneStatus()).toMatchObject({ idle: true, running: 0 });
  });

  it('advertises its compile lane on the session stream', async () => {
    const h = await startReceiver({ knobs: { devices: { kitchen: { hang: 'compile' } } } });
    const client = await h.paired(await h.offloader('office'));
    const status = client.queueStatus();
    const first = (await status.next()).value as pb.QueueStatusResponse;
    expect(first).toMatchObject({ idle: true, running: 0, slots: 1, protocolVersion: 1, dashboardId: h.service.receiver.identity.dashboardId });
    const { sha256 } = await client.submitBundle(await bundleFor('kitchen.yaml', deviceYaml('kitchen')));
    const build = await client.startBuild({ bundleSha256: sha256, configuration: 'kitchen.yaml', action: COMPILE });
    for (;;) {
      const next = (await status.next()).value as pb.QueueStatusResponse;
      if (next.running === 1) {
        expect(next.idle).toBe(false);
        break;
      }
    }
    await client.cancel(build.buildId);
    for (;;) {
      const next = (await status.next()).value as pb.QueueStatusResponse;
      if (next.idle) break;
    }
    status[Symbol.dispose]();
  });

  it('the TTL sweep removes cold build dirs and bundles but never an in-flight build\'s', async () => {
    const h = await startReceiver({ settings: { 'receiver.buildDirTtlS': '60' }, knobs: { devices: { hot: { hang: 'compile' } } } });
    const offloader = await h.offloader('office');
    const client = await h.paired(offloader);
    const cold = await client.submitBundle(await bundleFor('cold.yaml', deviceYaml('cold')));
    const coldBuild = await client.startBuild({ bundleSha256: cold.sha256, configuration: 'cold.yaml', action: COMPILE });
    expect((await followToEnd(client, coldBuild.buildId)).final?.status).toBe(COMPLETED);
    const hot = await client.submitBundle(await bundleFor('hot.yaml', deviceYaml('hot')));
    const hotBuild = await client.startBuild({ bundleSha256: hot.sha256, configuration: 'hot.yaml', action: COMPILE });
    const hotDir = resolveBuildPaths(h.configDir, 'hot.yaml', { dashboardId: offloader.dashboardId }).dataDir;
    const coldDir = resolveBuildPaths(h.configDir, 'cold.yaml', { dashboardId: offloader.dashboardId }).dataDir;
    await waitFor(() => h.service.receiver.builds.get(offloader.dashboardId, hotBuild.buildId).process);

    // An hour later, both dirs and bundles are older than the TTL; only the idle ones go.
    h.clock.offsetMs = 3_600_000;
    const swept = await h.service.receiver.sweep();
    expect(swept.removedDirs).toEqual([coldDir]);
    expect(swept.removedBundles.map((p) => p.endsWith(`${cold.sha256}.tar.gz`))).toEqual([true]);
    await expect(stat(coldDir)).rejects.toThrow();
    expect((await stat(hotDir)).isDirectory()).toBe(true);
    expect(await client.hasBundle(hot.sha256)).toBe(true);
    expect(await client.hasBundle(cold.sha256)).toBe(false);
    await client.cancel(hotBuild.buildId);
  });
});
