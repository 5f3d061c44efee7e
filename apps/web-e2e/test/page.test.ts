import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SIM_BIN } from '@kiln/esphome-sim';
import { GatewayClient } from '@kiln/gateway';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { browserMissing, launchBrowser, openPage, screenshot } from './browser.js';
import { freePort, KILN_BIN, startKiln, type KilnHost } from './host.js';

let browser: Browser;
const hosts: Array<KilnHost & AsyncDisposable> = [];
const externals: string[][] = [];

async function kiln(options: Parameters<typeof startKiln>[0]): Promise<KilnHost> {
  const host = (await startKiln(options)) as KilnHost & AsyncDisposable;
  hosts.push(host);
  return host;
}

async function open(host: KilnHost, path = ''): Promise<Page> {
  const { page, external } = await openPage(browser, host.url.replace(/\/$/, ''));
  externals.push(external);
  await page.goto(`${host.url}${path}`);
  await page.locator('[data-testid=connection][data-state=open]').waitFor();
  return page;
}

const loggedInRows = (page: Page) => page.locator('table[data-testid=devices] tbody tr[data-device]');

/** The API's own client, for arranging what the page should then show. */
async function api(host: KilnHost): Promise<GatewayClient> {
  const client = await GatewayClient.connect(`${host.url.replace('http', 'ws')}ws`);
  return client;
}

/** The page updates asynchronously: poll for what it should come to show (vitest's default gives up after 1 s). */
const eventually = <T>(read: () => T | Promise<T>) => expect.poll(read, { timeout: 20_000, interval: 50 });

/** The offloader section's state, the connection and any notice or error shown: a readable line for a failure. */
const offloaderState = (page: Page): Promise<string> =>
  page
    .evaluate(() => {
      const text = (selector: string, attribute?: string) => {
        const element = document.querySelector(selector);
        return element ? (attribute ? element.getAttribute(attribute) : element.textContent) : 'none';
      };
      return `offloader ${text('[data-testid=offloader]', 'data-state')}; connection ${text('[data-testid=connection]', 'data-state')}; notice ${text('[data-testid=notice]')}; error ${text('[data-testid=offloader-error]')}`;
    })
    .catch((err: unknown) => `navigating (${String(err)})`);

const lane = (page: Page, name: 'compile' | 'upload') => page.locator(`.lane[data-lane=${name}]`);

/** A host that also runs a remote build receiver (gRPC on a free loopback port). */
const RECEIVER_HOST = {
  services: ['logstore', 'catalog', 'firmware', 'devices', 'gateway', 'receiver'],
  settings: { 'receiver.grpcListen': '127.0.0.1:0', 'receiver.toolchain': SIM_BIN, 'receiver.name': 'workshop' },
};

/** `kiln pair <address> --yes` as an offloader on its own data dir: its output and exit. */
function kilnPair(address: string, dataDir: string) {
  const child = spawn(KILN_BIN, ['pair', address, '--yes', '--wait', '120', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: dataDir } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { output: () => out, exited, kill: () => child.exitCode === null && child.signalCode === null && child.kill('SIGTERM') };
}

describe.skipIf(browserMissing)('the web page in Chromium against kiln supervise (esphome simulator)', () => {
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });
  afterEach(async () => {
    for (const host of hosts.splice(0)) await host[Symbol.asyncDispose]();
    // Everything the page needs is served by Kiln: no font, icon or script from anywhere else.
    for (const external of externals.splice(0)) expect(external).toEqual([]);
  });

  it('install: the compile runs on the compile lane while the upload is held, then the upload runs, both complete', async () => {
    const host = await kiln({ devices: ['hall', 'porch'], knobs: { default: { compileMs: 2500, uploadMs: 2000, steps: 10 } } });
    const page = await open(host);
    const hall = page.locator('tr[data-device="hall.yaml"]');
    await eventually(() => page.locator('table[data-testid=devices] tbody tr').count()).toBe(2);
    await eventually(() => hall.locator('[data-testid=last-build]').textContent()).toBe('never');
    await screenshot(page, 'install-0-devices');

    await hall.getByRole('button', { name: 'Install' }).click();
    const compile = lane(page, 'compile').locator('li[data-state=running]');
    await compile.waitFor();
    await eventually(() => compile.textContent()).toContain('compile hall.yaml');
    await lane(page, 'upload').locator('li[data-state=held]').waitFor();
    await compile.getByRole('progressbar').waitFor();
    await eventually(async () => Number(await compile.getByRole('progressbar').getAttribute('aria-valuenow'))).toBeGreaterThan(0);
    await eventually(() => hall.locator('[data-testid=device-status]').textContent()).toBe('compile running');
    await screenshot(page, 'install-1-compiling-upload-held');

    const upload = lane(page, 'upload').locator('li[data-state=running]');
    await upload.waitFor();
    await eventually(() => upload.textContent()).toContain('upload hall.yaml');
    await eventually(() => lane(page, 'compile').textContent()).toContain('idle');
    await screenshot(page, 'install-2-uploading');

    const recent = page.locator('[data-testid=recent-jobs] li[data-status=completed]');
    await eventually(() => recent.count()).toBe(2);
    await eventually(() => lane(page, 'upload').textContent()).toContain('idle');
    await eventually(() => hall.locator('[data-testid=last-build]').textContent()).toMatch(/^completed/);
    await screenshot(page, 'install-3-completed');
  });

  it('a job page follows the log: history, then live lines to the end, scrolled to the bottom', async () => {
    const host = await kiln({ devices: ['hall'], knobs: { default: { compileMs: 6000, uploadMs: 200, steps: 40 } } });
    const client = await api(host);
    try {
      const job = (await client.call('firmware/compile', { configuration: 'hall.yaml' })).result as { id: string };
      // Wait for some output to exist before the page opens, so it has history to show first.
      const follow = client.send('firmware/follow_job', { job_id: job.id });
      await client.next((f) => f.message_id === follow && f.event === 'job_output' && (f.data as { lines: string[] }).lines.some((l) => /\[5\/40\]/.test(l)));
      const page = await open(host, `#/jobs/${job.id}`);
      const log = page.locator('[data-testid=log]');
      await eventually(() => log.textContent()).toContain('[5/40]');
      await eventually(() => page.locator('[data-testid=job-status]').textContent()).toBe('running');
      await screenshot(page, 'follow-1-running');
      // Live lines arrive after the history without a reload, up to the toolchain's last line.
      await eventually(() => page.locator('[data-testid=job]').getAttribute('data-status')).toBe('completed');
      await eventually(() => log.textContent()).toContain('Successfully compiled');
      const lines = await log.locator('div').allTextContents();
      const steps = lines.map((l) => /\[(\d+)\/40\]/.exec(l)?.[1]).filter(Boolean).map(Number);
      expect(steps).toEqual([...steps].sort((a, b) => a - b));
      expect(new Set(steps).size).toBe(steps.length); // history and live neither overlap nor repeat
      expect(steps.at(-1)).toBe(40);
      const pinned = await log.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight);
      expect(pinned).toBeLessThan(24);
      await screenshot(page, 'follow-2-completed');
    } finally {
      client.close();
    }
  });

  it('a trimmed log shows the trim notice at its head and in a banner', async () => {
    const host = await kiln({ devices: ['noisy'], knobs: { default: { compileMs: 300, uploadMs: 200, steps: 5, floodLines: 5000 } } });
    const client = await api(host);
    try {
      const job = (await client.call('firmware/compile', { configuration: 'noisy.yaml' })).result as { id: string };
      await client.call('firmware/follow_job', { job_id: job.id });
      const page = await open(host, `#/jobs/${job.id}`);
      const banner = page.locator('[data-testid=trim-notice]');
      await banner.waitFor();
      expect(await banner.textContent()).toMatch(/output trimmed: \d+ earlier line\(s\) elided/);
      const first = page.locator('[data-testid=log] div').first();
      await eventually(() => first.getAttribute('class')).toBe('trim-notice');
      expect(await first.textContent()).toMatch(/^\.\.\. \[output trimmed: \d+ earlier line\(s\) elided\]/);
      await screenshot(page, 'trim-notice');
    } finally {
      client.close();
    }
  });

  it('cancel a running compile from its lane: it and its held upload end cancelled, nothing is flashed', async () => {
    const host = await kiln({ devices: ['stuck'], knobs: { default: { compileMs: 300, uploadMs: 200, steps: 5, hang: 'compile' } } });
    const page = await open(host);
    await page.locator('tr[data-device="stuck.yaml"]').getByRole('button', { name: 'Install' }).click();
    const running = lane(page, 'compile').locator('li[data-state=running]');
    await running.waitFor();
    await lane(page, 'upload').locator('li[data-state=held]').waitFor();
    await screenshot(page, 'cancel-1-running');
    await running.getByRole('button', { name: 'Cancel' }).click();
    const cancelled = page.locator('[data-testid=recent-jobs] li[data-status=cancelled]');
    await eventually(() => cancelled.count()).toBe(2);
    expect(await cancelled.allTextContents()).toEqual(expect.arrayContaining([expect.stringContaining('compile stuck.yaml'), expect.stringContaining('upload stuck.yaml')]));
    await eventually(() => lane(page, 'compile').textContent()).toContain('idle');
    await eventually(() => lane(page, 'upload').textContent()).toContain('idle');
    await eventually(() => page.locator('[data-testid=recent-jobs] li[data-status=completed]').count()).toBe(0);
    await screenshot(page, 'cancel-2-cancelled');
  });

  it('cancel from the job page', async () => {
    const host = await kiln({ devices: ['stuck'], knobs: { default: { hang: 'compile' } } });
    const client = await api(host);
    try {
      const job = (await client.call('firmware/compile', { configuration: 'stuck.yaml' })).result as { id: string };
      const page = await open(host, `#/jobs/${job.id}`);
      await eventually(() => page.locator('[data-testid=job-status]').textContent()).toBe('running');
      await page.locator('[data-testid=cancel]').click();
      await eventually(() => page.locator('[data-testid=job]').getAttribute('data-status')).toBe('cancelled');
      expect(await page.locator('[data-testid=cancel]').count()).toBe(0);
      const final = (await client.call('firmware/get_job', { job_id: job.id })).result as { status: string };
      expect(final.status).toBe('cancelled');
    } finally {
      client.close();
    }
  });

  it('survives a restart of kiln: shows it is reconnecting, then resyncs devices and jobs from a fresh snapshot', async () => {
    const host = await kiln({ devices: ['hall'], knobs: { default: { compileMs: 200, uploadMs: 100, steps: 5 } } });
    const page = await open(host);
    const snapshots: string[] = [];
    page.on('websocket', (ws) => ws.on('framereceived', ({ payload }) => typeof payload === 'string' && payload.includes('"initial_state"') && snapshots.push(payload)));
    await page.locator('tr[data-device="hall.yaml"]').waitFor();
    await host.stop();
    await page.locator('[data-testid=connection][data-state=reconnecting]').waitFor();
    await screenshot(page, 'reconnect-1-down');
    // While the page is disconnected: a device appears on disk and a job runs to completion.
    await writeFile(join(host.configDir, 'attic.yaml'), 'esphome:\n  name: attic\nesp8266:\n  board: d1_mini\n');
    await host.restart();
    const client = await api(host);
    try {
      const job = (await client.call('firmware/compile', { configuration: 'attic.yaml' })).result as { id: string };
      await client.call('firmware/follow_job', { job_id: job.id });
    } finally {
      client.close();
    }
    await page.locator('[data-testid=connection][data-state=open]').waitFor({ timeout: 20_000 });
    await page.locator('tr[data-device="attic.yaml"]').waitFor();
    await eventually(() => page.locator('tr[data-device="attic.yaml"] [data-testid=last-build]').textContent()).toMatch(/^completed/);
    expect(await page.locator('table[data-testid=devices] tbody tr').count()).toBe(2);
    // The new connection rebuilt its state from subscribe_events' snapshot, which already held the device.
    const resync = JSON.parse(snapshots.at(-1)!) as { data: { devices: Array<{ configuration: string }> } };
    expect(resync.data.devices.map((d) => d.configuration).sort()).toEqual(['attic.yaml', 'hall.yaml']);
    await screenshot(page, 'reconnect-2-resynced');
  });

  it('with a password set, the page asks for it; a wrong one is refused, the right one shows the devices and survives a reload', async () => {
    const host = await kiln({ devices: ['hall'], knobs: { default: {} }, password: 'correct horse' });
    const page = await open(host);
    const form = page.locator('form.login');
    await form.waitFor();
    expect(await loggedInRows(page).count()).toBe(0);
    await form.locator('input[type=password]').fill('wrong password');
    await form.getByRole('button', { name: 'Log in' }).click();
    await form.locator('.error').waitFor();
    expect(await loggedInRows(page).count()).toBe(0);
    await screenshot(page, 'login-refused');
    await form.locator('input[type=password]').fill('correct horse');
    await form.getByRole('button', { name: 'Log in' }).click();
    await page.locator('tr[data-device="hall.yaml"]').waitFor();
    // The session token is kept for the tab: a reload logs in again without asking.
    await page.reload();
    await page.locator('tr[data-device="hall.yaml"]').waitFor();
    expect(await form.count()).toBe(0);
  });

  it('adds a device from the page (it appears live); a duplicate name shows the API\'s error; deep links load the page', async () => {
    const host = await kiln({ devices: ['hall'], knobs: { default: {} } });
    const page = await open(host, 'some/deep/link');
    await page.getByLabel('new device name').fill('Garage Door');
    await page.getByRole('button', { name: 'Add device' }).click();
    await page.locator('tr[data-device="garage-door.yaml"]').waitFor();
    expect(await loggedInRows(page).count()).toBe(2);
    await page.getByLabel('new device name').fill('Garage Door');
    await page.getByRole('button', { name: 'Add device' }).click();
    const notice = page.locator('[data-testid=notice]');
    await notice.waitFor();
    expect(await notice.textContent()).toMatch(/^devices\/create: .*garage-door\.yaml/);
    expect(await loggedInRows(page).count()).toBe(2);
    await screenshot(page, 'add-device-duplicate');
  });

  it('catalog: search and filter components (the same answers as the API), open one and see its config entries, nested ones inside', async () => {
    const host = await kiln({ devices: [], knobs: { default: {} } });
    const client = await api(host);
    try {
      type Listing = { components: Array<{ id: string; category: string }>; total: number };
      const all = (await client.call('components/get_components', {})).result as Listing;
      const i2c = (await client.call('components/get_components', { query: 'i2c' })).result as Listing;
      const sensors = (await client.call('components/get_components', { category: 'sensor' })).result as Listing;
      expect(i2c.total).toBeGreaterThan(0);
      expect(i2c.total).toBeLessThan(all.total);

      const page = await open(host, '#/catalog');
      const total = page.locator('[data-testid=catalog-total]');
      const ids = () => page.locator('[data-testid=catalog-results] li').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-component')));
      await eventually(() => total.textContent()).toBe(`${all.total} components`);
      await screenshot(page, 'catalog-1-all');

      await page.getByLabel('search components').fill('i2c');
      await eventually(ids).toEqual(i2c.components.map((c) => c.id));
      await screenshot(page, 'catalog-2-search');

      await page.getByLabel('search components').fill('');
      await page.getByLabel('category').selectOption('sensor');
      await eventually(ids).toEqual(sensors.components.map((c) => c.id));
      expect(sensors.components.every((c) => c.category === 'sensor')).toBe(true);

      await page.locator('[data-component="sensor.bme280_i2c"] a').click();
      const component = page.locator('[data-testid=component][data-component="sensor.bme280_i2c"]');
      await component.locator('[data-testid=config-entries]').first().waitFor();
      const body = ((await client.call('components/get_component_bodies', { component_ids: ['sensor.bme280_i2c'] })).result as { components: Array<{ config_entries: Array<{ key: string; config_entries?: Array<{ key: string }> }> }> }).components[0]!;
      const topKeys = await component.locator('[data-testid=config-entries]').first().evaluate((ul) => Array.from(ul.children).map((li) => li.getAttribute('data-key')));
      expect(topKeys).toEqual(body.config_entries.map((e) => e.key));
      const nested = body.config_entries.find((e) => e.config_entries?.length)!;
      await component.locator(`li[data-key="${nested.key}"] li[data-key="${nested.config_entries![0]!.key}"]`).waitFor();
      await screenshot(page, 'catalog-3-component');

      await page.goto(`${host.url}#/catalog/no.such.component`);
      await page.getByText('No component "no.such.component" in the catalog.').waitFor();
    } finally {
      client.close();
    }
  });

  it('every reload shows the live connection and the state (a socket that opens before the page subscribes to its store is not missed)', async () => {
    const host = await kiln({ devices: ['porch'], knobs: { default: {} } });
    const page = await open(host);
    // Before the fix, one of these reloads (assets cached, loopback) left "connecting" and an empty list on
    // screen for good within 4 to 45 reloads, while the page's socket was open.
    for (let reload = 0; reload < 60; reload++) {
      await page.reload();
      await page.locator('[data-testid=connection][data-state=open]').waitFor({ timeout: 10_000 });
      await loggedInRows(page).filter({ hasText: 'porch.yaml' }).waitFor({ timeout: 10_000 });
    }
  });

  it('remote builds, receiver side: open the window, an offloader (kiln pair) shows up pending with its pin, approve it on the page, remove it, reject another, rotate the identity', async () => {
    const host = await kiln({ devices: [], knobs: { default: {} }, ...RECEIVER_HOST });
    const client = await api(host);
    const offloaderDir = await mkdtemp(join(tmpdir(), 'kiln-offloader-'));
    let pairing: ReturnType<typeof kilnPair> | undefined;
    try {
      const identity = (await client.call('remote_build/get_identity', {})).result as { pin_sha256: string; dashboard_id: string; address: string };
      const page = await open(host, '#/remote');
      // Every command the page sends from here on (a reload: a new socket): the screen must follow the
      // receiver from subscribe_events alone, never by re-reading get_identity.
      const sent: string[] = [];
      page.on('websocket', (ws) => ws.on('framesent', ({ payload }) => typeof payload === 'string' && sent.push((JSON.parse(payload) as { command?: string }).command ?? payload)));
      await page.reload();
      await page.locator('[data-testid=connection][data-state=open]').waitFor();
      const receiver = page.locator('[data-testid=receiver][data-state=present]');
      await receiver.waitFor();
      // The pin as people compare it: upper-case groups of four, the same as the API's.
      expect(await page.locator('[data-testid=receiver-pin]').getAttribute('data-pin')).toBe(identity.pin_sha256);
      expect(await page.locator('[data-testid=receiver-pin]').textContent()).toMatch(/^([0-9A-F]{4} ){15}[0-9A-F]{4}$/);
      expect(await page.locator('[data-testid=receiver-name]').textContent()).toBe('workshop');
      expect(await page.locator('[data-testid=receiver-dashboard-id]').textContent()).toBe(identity.dashboard_id);
      expect(await page.locator('[data-testid=receiver-address]').getAttribute('data-bound')).toBe('true');
      expect(await page.locator('[data-testid=receiver-address]').textContent()).toBe(identity.address);
      const window = page.locator('[data-testid=pairing-window]');
      expect(await window.getAttribute('data-state')).toBe('closed');
      await screenshot(page, 'remote-1-receiver');

      await page.getByLabel('pairing window seconds').fill('120');
      await window.getByRole('button', { name: 'Open' }).click();
      await eventually(() => window.getAttribute('data-state')).toBe('open');
      await eventually(() => page.locator('[data-testid=window-countdown]').textContent()).toMatch(/closes by itself in (2:00|1:[0-5]\d)$/);
      expect(((await client.call('remote_build/get_identity', {})).result as { pairing_open: boolean }).pairing_open).toBe(true);

      pairing = kilnPair(identity.address, offloaderDir);
      const pending = page.locator('table[data-testid=pending-peers] tbody tr');
      await eventually(() => pending.count()).toBe(1);
      // What the offloader printed is what the page shows: the receiver's pin and the offloader's own.
      await eventually(() => pairing!.output()).toContain('waiting for approval');
      const printed = /receiver pin: ([0-9A-F ]+)\n[\s\S]*this offloader: (\S+) \(([^)]+)\) pin ([0-9A-F ]+)\n/.exec(pairing.output());
      expect(printed, pairing.output()).not.toBeNull();
      const [, receiverPin, , offloaderId, offloaderPin] = printed!;
      expect(receiverPin).toBe(await page.locator('[data-testid=receiver-pin]').textContent());
      expect(await pending.getAttribute('data-peer')).toBe(offloaderId);
      expect(await pending.locator('[data-testid=peer-pin]').textContent()).toBe(offloaderPin);
      await screenshot(page, 'remote-2-pending');

      await pending.getByRole('button', { name: 'Approve' }).click();
      expect(await pairing.exited).toBe(0);
      expect(pairing.output()).toContain('paired: approved by workshop');
      const recorded = JSON.parse(await readFile(join(offloaderDir, 'offloader', 'receivers.json'), 'utf8')) as Array<{ address: string; pin: string }>;
      expect(recorded).toEqual([expect.objectContaining({ address: identity.address, pin: identity.pin_sha256 })]);
      const approved = page.locator(`table[data-testid=approved-peers] tbody tr[data-peer="${offloaderId}"]`);
      await approved.waitFor();
      await eventually(() => page.locator('[data-testid=pending-peers] tbody tr').count()).toBe(0);
      await screenshot(page, 'remote-3-approved');

      await approved.getByRole('button', { name: 'Remove' }).click();
      await eventually(() => page.locator('table[data-testid=approved-peers]').count()).toBe(0);
      expect(((await client.call('remote_build/get_identity', {})).result as { peers: unknown[] }).peers).toEqual([]);

      // A second offloader is rejected: its kiln pair ends unpaired and records nothing.
      const rejectedDir = join(offloaderDir, 'rejected');
      pairing = kilnPair(identity.address, rejectedDir);
      await eventually(() => pending.count()).toBe(1);
      await screenshot(page, 'remote-4-second-request');
      await pending.getByRole('button', { name: 'Reject' }).click();
      expect(await pairing.exited).toBe(1);
      expect(pairing.output()).not.toContain('paired: approved');
      await expect(readFile(join(rejectedDir, 'offloader', 'receivers.json'))).rejects.toThrow();
      await eventually(() => page.locator('[data-testid=pending-peers] tbody tr').count()).toBe(0);
      expect(((await client.call('remote_build/get_identity', {})).result as { peers: unknown[] }).peers).toEqual([]);

      await window.getByRole('button', { name: 'Close' }).click();
      await eventually(() => window.getAttribute('data-state')).toBe('closed');

      // Rotation asks first; keeping the key changes nothing, confirming shows the new pin.
      const rotate = page.locator('[data-testid=rotate]');
      await rotate.getByRole('button', { name: 'Rotate identity…' }).click();
      await screenshot(page, 'remote-5-rotate-confirm');
      await rotate.getByRole('button', { name: 'Keep the current key' }).click();
      expect(((await client.call('remote_build/get_identity', {})).result as { pin_sha256: string }).pin_sha256).toBe(identity.pin_sha256);
      await rotate.getByRole('button', { name: 'Rotate identity…' }).click();
      await rotate.getByRole('button', { name: 'Rotate now' }).click();
      await eventually(() => page.locator('[data-testid=receiver-pin]').getAttribute('data-pin')).not.toBe(identity.pin_sha256);
      const rotated = (await client.call('remote_build/get_identity', {})).result as { pin_sha256: string; dashboard_id: string };
      expect(await page.locator('[data-testid=receiver-pin]').getAttribute('data-pin')).toBe(rotated.pin_sha256);
      expect(rotated.dashboard_id).toBe(identity.dashboard_id);
      await screenshot(page, 'remote-6-rotated');
      // The pending rows, approvals, removals, window and new pin all came as events: nothing was polled.
      expect(sent).toContain('subscribe_events');
      // At most this host's offloader identity is asked for, once (the snapshot leaves out one not created
      // yet; the page may ask before this recorder is attached).
      expect(sent.filter((t) => t.startsWith('remote_build/get_') && t !== 'remote_build/get_offloader_settings')).toEqual([]);
      expect(sent.filter((t) => t === 'remote_build/get_offloader_settings').length).toBeLessThanOrEqual(1);
    } finally {
      pairing?.kill();
      client.close();
      await rm(offloaderDir, { recursive: true, force: true });
    }
  });

  it('remote builds on a host without a receiver: the screen says so with the API\'s error', async () => {
    const host = await kiln({ devices: [], knobs: { default: {} } });
    const page = await open(host, '#/remote');
    await page.locator('[data-testid=receiver][data-state=absent]').waitFor();
    expect(await page.locator('[data-testid=receiver-error]').textContent()).toMatch(/^This host runs no remote build receiver: no responders for /);
    expect(await page.locator('[data-testid=notice]').count()).toBe(0);
    await screenshot(page, 'remote-no-receiver');
  });

  it('"Send to…" on a device row compiles it on the chosen receiver (remote_build/submit_job) and opens the job', async () => {
    // The host's own receiver, paired with its own offloader half through the API.
    const host = await kiln({ devices: ['porch'], knobs: { default: { compileMs: 200, steps: 4 } }, ...RECEIVER_HOST });
    const client = await api(host);
    try {
      const identity = (await client.call('remote_build/get_identity', {})).result as { address: string };
      const port = Number(identity.address.split(':').at(-1));
      const pin = ((await client.call('remote_build/preview_pair', { hostname: '127.0.0.1', port })).result as { pin_sha256: string }).pin_sha256;
      await client.call('remote_build/set_pairing_window', { open: true });
      const requested = await client.call('remote_build/request_pair', { hostname: '127.0.0.1', port, pin_sha256: pin, receiver_label: 'bench box' });
      expect(requested.result, JSON.stringify(requested)).toMatchObject({ status: 'pending' });
      const peers = async () => ((await client.call('remote_build/get_identity', {})).result as { peers: Array<{ dashboard_id: string }> }).peers;
      await eventually(async () => (await peers()).length).toBe(1);
      const approved = await client.call('remote_build/approve_peer', { dashboard_id: (await peers())[0]!.dashboard_id });
      expect(approved.result, JSON.stringify(approved)).toMatchObject({ status: 'approved' });
      await eventually(async () => ((await client.call('remote_build/get_offloader_settings', {})).result as { pairings: Array<{ eligible: boolean }> }).pairings[0]?.eligible).toBe(true);

      const page = await open(host);
      const row = loggedInRows(page).filter({ hasText: 'porch.yaml' });
      await row.getByRole('button', { name: 'Send to…' }).click();
      expect(await row.getByLabel('receiver for porch.yaml').inputValue()).toBe(pin);
      expect(await row.getByLabel('receiver for porch.yaml').locator('option').textContent()).toBe('bench box');
      await screenshot(page, 'send-to-receiver-picker');
      await row.getByRole('button', { name: 'Send compile' }).click();
      await eventually(() => page.locator('[data-testid=job]').getAttribute('data-status')).toBe('completed');
      expect(await page.locator('[data-testid=log]').textContent()).toMatch(/compiling on receiver bench box \(127\.0\.0\.1:\d+\)/);
      const jobId = await page.locator('[data-testid=job]').getAttribute('data-job');
      const job = (await client.call('firmware/get_job', { job_id: jobId })).result as { receiver_pin: string; type: string };
      expect(job).toMatchObject({ receiver_pin: pin, type: 'compile' });
      await screenshot(page, 'send-to-receiver-job');
    } finally {
      client.close();
    }
  });

  it('remote builds through two pages: the offloader previews the receiver (same pin as its page), a rotation in between is refused, then it requests, the receiver page approves (listing the pin the offloader page shows as its own); enable/disable, edit address, settings, unpair', async () => {
    const receiverHost = await kiln({ devices: [], knobs: { default: {} }, ...RECEIVER_HOST });
    const offloaderHost = await kiln({ devices: [], knobs: { default: {} } });
    const receiverApi = await api(receiverHost);
    const offloaderApi = await api(offloaderHost);
    try {
      const identity = (await receiverApi.call('remote_build/get_identity', {})).result as { pin_sha256: string; address: string };
      const receiverPort = identity.address.split(':').at(-1)!;
      type Settings = {
        remote_builds_enabled: boolean;
        version_match_policy: string;
        include_local_in_pool: boolean;
        pairings: Array<{ pin_sha256: string; label: string; enabled: boolean; hostname: string; port: number }>;
        identity: { pin_sha256: string };
      };
      const offloaderSettings = async () => (await offloaderApi.call('remote_build/get_offloader_settings', {})).result as Settings;

      const receiverPage = await open(receiverHost, '#/remote');
      const offloaderPage = await open(offloaderHost, '#/remote');
      await receiverPage.locator('[data-testid=receiver][data-state=present]').waitFor();
      const offloader = offloaderPage.locator('[data-testid=offloader][data-state=present]');
      await offloader.waitFor();
      expect(await offloaderPage.locator('[data-testid=pairings] tbody tr').count()).toBe(0);
      const initial = await offloaderSettings();
      const settings = offloaderPage.locator('[data-testid=offloader-settings]');
      expect(await settings.getByLabel('Send compiles to paired receivers').isChecked()).toBe(initial.remote_builds_enabled);
      expect(await settings.getByLabel('version match policy').inputValue()).toBe(initial.version_match_policy);

      // Nothing listens there: the preview's error is shown in the form.
      const add = offloaderPage.locator('[data-testid=add-receiver]');
      await offloaderPage.getByLabel('receiver host').fill('127.0.0.1');
      await offloaderPage.getByLabel('receiver port').fill(String(await freePort()));
      await add.getByRole('button', { name: 'Preview' }).click();
      await add.locator('[data-testid=add-receiver-error]').waitFor();
      expect(await add.getAttribute('data-step')).toBe('address');

      await receiverPage.getByLabel('pairing window seconds').fill('300');
      await receiverPage.locator('[data-testid=pairing-window]').getByRole('button', { name: 'Open' }).click();
      await eventually(() => receiverPage.locator('[data-testid=pairing-window]').getAttribute('data-state')).toBe('open');

      const preview = async () => {
        await offloaderPage.getByLabel('receiver port').fill(receiverPort);
        await add.getByRole('button', { name: 'Preview' }).click();
        await offloaderPage.locator('[data-testid=add-receiver][data-step=preview]').waitFor();
      };
      await preview();
      // The pin to compare out of band: the offloader page shows what the receiver page shows.
      expect(await offloaderPage.locator('[data-testid=preview-pin]').getAttribute('data-pin')).toBe(identity.pin_sha256);
      expect(await offloaderPage.locator('[data-testid=preview-pin]').textContent()).toBe(await receiverPage.locator('[data-testid=receiver-pin]').textContent());
      expect(await offloaderPage.locator('[data-testid=preview-window]').textContent()).toBe('open');
      await screenshot(offloaderPage, 'pair-two-pages-1-offloader-preview');

      // The receiver's key changes after the preview: the request with the confirmed pin is refused.
      const rotate = receiverPage.locator('[data-testid=rotate]');
      await rotate.getByRole('button', { name: 'Rotate identity…' }).click();
      await rotate.getByRole('button', { name: 'Rotate now' }).click();
      await eventually(() => receiverPage.locator('[data-testid=receiver-pin]').getAttribute('data-pin')).not.toBe(identity.pin_sha256);
      const newPin = await receiverPage.locator('[data-testid=receiver-pin]').getAttribute('data-pin');
      await add.getByRole('button', { name: 'The pins match: request pairing' }).click();
      await eventually(() => add.locator('[data-testid=add-receiver-error]').textContent()).toMatch(/^permission_denied: .*presents pin/);
      expect((await offloaderSettings()).pairings).toEqual([]);
      expect(((await receiverApi.call('remote_build/get_identity', {})).result as { peers: unknown[] }).peers).toEqual([]);
      await screenshot(offloaderPage, 'pair-two-pages-2-pin-changed-refused');

      await add.getByRole('button', { name: 'Cancel' }).click();
      await preview();
      expect(await offloaderPage.locator('[data-testid=preview-pin]').getAttribute('data-pin')).toBe(newPin);
      await offloaderPage.getByLabel('receiver label').fill('workshop box');
      await offloaderPage.getByLabel('offloader label').fill('office-nas');
      await add.getByRole('button', { name: 'The pins match: request pairing' }).click();
      await offloaderPage.locator('[data-testid=add-receiver][data-step=pending]').waitFor();
      await screenshot(offloaderPage, 'pair-two-pages-3-offloader-waiting');

      const pending = receiverPage.locator('table[data-testid=pending-peers] tbody tr');
      await eventually(() => pending.count()).toBe(1);
      expect(await pending.locator('td').first().textContent()).toContain('office-nas');
      // The request the receiver lists carries the pin the offloader page shows as its own.
      const ownPin = offloaderPage.locator('[data-testid=offloader-pin]');
      const offloaderPin = (await offloaderSettings()).identity.pin_sha256;
      expect(offloaderPin).toMatch(/^[0-9a-f]{64}$/);
      expect(await ownPin.getAttribute('data-pin')).toBe(offloaderPin);
      expect(await pending.locator('[data-testid=peer-pin]').getAttribute('data-pin')).toBe(offloaderPin);
      expect(await pending.locator('[data-testid=peer-pin]').textContent()).toBe(await ownPin.textContent());
      await screenshot(receiverPage, 'pair-two-pages-4-receiver-pending');
      await pending.getByRole('button', { name: 'Approve' }).click();

      await offloaderPage.locator('[data-testid=add-receiver][data-step=paired]').waitFor({ timeout: 20_000 });
      const row = offloaderPage.locator(`table[data-testid=pairings] tbody tr[data-pairing="${newPin}"]`);
      await row.waitFor();
      expect(await row.locator('td').first().textContent()).toContain('workshop box');
      expect(await row.getAttribute('data-enabled')).toBe('true');
      expect((await offloaderSettings()).pairings).toEqual([expect.objectContaining({ pin_sha256: newPin, label: 'workshop box', enabled: true })]);
      await receiverPage.locator('table[data-testid=approved-peers] tbody tr').waitFor();
      await screenshot(offloaderPage, 'pair-two-pages-5-offloader-paired');
      await screenshot(receiverPage, 'pair-two-pages-6-receiver-approved');

      await row.getByRole('button', { name: 'Disable' }).click();
      await eventually(() => row.getAttribute('data-enabled')).toBe('false');
      expect((await offloaderSettings()).pairings[0]!.enabled).toBe(false);
      await row.getByRole('button', { name: 'Enable' }).click();
      await eventually(() => row.getAttribute('data-enabled')).toBe('true');
      expect((await offloaderSettings()).pairings[0]!.enabled).toBe(true);

      // Edit address: an address where nothing answers is refused in the form and the stored one stays;
      // the receiver's own address (it presents the paired pin) is accepted.
      await row.getByRole('button', { name: 'Edit address' }).click();
      const edit = offloaderPage.locator(`tr[data-edit-address="${newPin}"] [data-testid=edit-address]`);
      await edit.waitFor();
      await edit.getByLabel('new receiver port').fill(String(await freePort()));
      await edit.getByRole('button', { name: 'Save' }).click();
      await eventually(() => edit.locator('[data-testid=edit-address-error]').textContent()).toMatch(/^unavailable: /);
      await screenshot(offloaderPage, 'pair-two-pages-5b-edit-address-refused');
      expect((await offloaderSettings()).pairings[0]!.port).toBe(Number(receiverPort));
      await edit.getByLabel('new receiver port').fill(receiverPort);
      await edit.getByRole('button', { name: 'Save' }).click();
      await eventually(() => edit.count()).toBe(0);
      expect((await offloaderSettings()).pairings[0]).toMatchObject({ pin_sha256: newPin, port: Number(receiverPort), enabled: true });

      // Settings are stored by the host: the API and a reloaded page both show them.
      await settings.getByLabel('version match policy').selectOption('exact');
      await eventually(async () => (await offloaderSettings()).version_match_policy).toBe('exact');
      // The boxes show what the host stored: a click asks, the answer checks the box.
      await settings.getByLabel('This host compiles too while the receivers are busy').click();
      await eventually(async () => (await offloaderSettings()).include_local_in_pool).toBe(!initial.include_local_in_pool);
      await eventually(() => settings.getByLabel('This host compiles too while the receivers are busy').isChecked()).toBe(!initial.include_local_in_pool);
      await settings.getByLabel('Send compiles to paired receivers').click();
      await eventually(async () => (await offloaderSettings()).remote_builds_enabled).toBe(!initial.remote_builds_enabled);
      await eventually(() => settings.getByLabel('Send compiles to paired receivers').isChecked()).toBe(!initial.remote_builds_enabled);
      await offloaderPage.reload();
      // Polled with what the page shows, so a failure says why the section is not there.
      await expect.poll(() => offloaderState(offloaderPage), { timeout: 45_000, interval: 100 }).toMatch(/^offloader present;/);
      expect(await settings.getByLabel('version match policy').inputValue()).toBe('exact');
      expect(await settings.getByLabel('Send compiles to paired receivers').isChecked()).toBe(!initial.remote_builds_enabled);
      expect(await settings.getByLabel('This host compiles too while the receivers are busy').isChecked()).toBe(!initial.include_local_in_pool);
      await screenshot(offloaderPage, 'pair-two-pages-7-settings');

      await offloaderPage.locator(`tr[data-pairing="${newPin}"]`).getByRole('button', { name: 'Unpair' }).click();
      await eventually(() => offloaderPage.locator('table[data-testid=pairings]').count()).toBe(0);
      expect((await offloaderSettings()).pairings).toEqual([]);
    } finally {
      receiverApi.close();
      offloaderApi.close();
    }
  });
});
