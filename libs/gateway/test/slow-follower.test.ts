import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Client, type Frame } from './harness.js';

// Slow followers are bounded in bytes: a client that stops reading during an output flood has its
// output dropped (and is told how much), not buffered in the gateway. The gateway runs in a child
// process (./fixtures/flood-host.mjs, with the V8 flags apps/kiln/bin/kiln uses) so its RSS is measured alone.

/**
 * 512 MB: a 1 GB flood takes over a minute per test on a shared 2-core machine (it holds the same
 * bound: KILN_TEST_FLOOD_BYTES=1073741824). The growth does not depend on the size, only on the bound.
 */
const FLOOD_BYTES = Number(process.env['KILN_TEST_FLOOD_BYTES'] ?? 512 * 1024 ** 2);
const LINE_BYTES = 200;
const FLOOD_LINES = Math.ceil(FLOOD_BYTES / LINE_BYTES);
const RSS_GROWTH_BOUND = 30 * 1024 * 1024;
const KILN_NODE_FLAGS = ['--max-semi-space-size=2', '--optimize-for-size'];
const FLOOD_TIMEOUT_MS = 240_000;

interface Host {
  url: string;
  /** Start watching RSS from here. */
  mark(): Promise<void>;
  /** RSS at the mark and the highest sampled since (every 20 ms). */
  report(): Promise<{ baseline: number; peak: number }>;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startHost(): Promise<Host> {
  const root = await mkdtemp(join(tmpdir(), 'kiln-slow-follower-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  const configDir = join(root, 'config');
  await mkdir(configDir, { recursive: true });
  for (const d of ['blocker', 'flood']) await writeFile(join(configDir, `${d}.yaml`), `esphome:\n  name: ${d}\nesp32:\n  board: esp32dev\n`);
  const knobs = join(root, 'knobs.json');
  await writeFile(knobs, JSON.stringify({ devices: { blocker: { compileMs: 1_000, steps: 2 }, flood: { compileMs: 0, steps: 2, floodLines: FLOOD_LINES, floodLineBytes: LINE_BYTES } } }));
  const script = fileURLToPath(new URL('./fixtures/flood-host.mjs', import.meta.url));
  const child: ChildProcess = spawn(process.execPath, [...KILN_NODE_FLAGS, script, join(root, 'data'), configDir, knobs], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  cleanups.push(async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve((JSON.parse(out.split('\n')[0]!) as { url: string }).url);
    });
    child.once('exit', (code) => reject(new Error(`flood host exited with ${code} before listening`)));
  });
  const ask = <R>(message: string) =>
    new Promise<R>((resolve) => {
      child.once('message', (reply) => resolve(reply as R));
      child.send(message);
    });
  return { url, mark: async () => void (await ask('mark')), report: () => ask('report') };
}

async function connect(url: string): Promise<Client> {
  const c = await Client.connect(url);
  cleanups.push(() => c.close());
  return c;
}

/** Stop reading: the client's TCP socket no longer drains, so the server's sends back up. */
const socketOf = (c: Client) => (c.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;

async function completion(watcher: Client, events: number, jobId: string): Promise<void> {
  await watcher.next((f) => f.message_id === events && f.event === 'job_completed' && (f.data as { id: string }).id === jobId, FLOOD_TIMEOUT_MS);
}

type Sample = { baseline: number; peak: number };

/**
 * The same flood with nobody following, first: what the host's RSS reaches doing the work itself (V8
 * grows its heap differently per release: on Node 24 the flood alone peaks 17–37 MB above idle on a
 * loaded 2-core machine, on Node 20 ~13 MB). A follower's cost is how far the followed flood's peak
 * goes past that: a follower buffering its backlog would add the flood's size, hundreds of MB.
 */
async function unfollowedFlood(host: Host, watcher: Client, events: number): Promise<Sample> {
  await host.mark();
  const job = (await watcher.call('firmware/compile', { configuration: 'flood.yaml' })).result as { id: string };
  await completion(watcher, events, job.id);
  return host.report();
}

function expectBoundedGrowth(followed: Sample, unfollowed: Sample): void {
  const mb = (bytes: number) => (bytes / 1024 ** 2).toFixed(1);
  const said = `gateway RSS ${mb(followed.baseline)} MB -> peak ${mb(followed.peak)} MB during the followed flood; ${mb(unfollowed.baseline)} -> ${mb(unfollowed.peak)} MB during the same flood unfollowed`;
  expect(followed.peak - Math.max(unfollowed.peak, followed.baseline), said).toBeLessThan(RSS_GROWTH_BOUND);
}

const linesOf = (frames: Frame[], jobId: string) =>
  frames.filter((f) => f.event === 'job_output' && (f.data as { job_id: string }).job_id === jobId).reduce((n, f) => n + (f.data as { lines: string[] }).lines.length, 0);
const droppedOf = (frames: Frame[], jobId: string) => frames.filter((f) => f.event === 'job_output_dropped' && (f.data as { job_id: string }).job_id === jobId).map((f) => f.data as { job_id: string; dropped_lines: number });

describe(`a follower that stops reading during a ${Math.round(FLOOD_BYTES / 1024 ** 2)} MB output flood`, () => {
  it('firmware/follow_job: a paused follower adds less than 30 MB to what the flood itself costs; on resuming, the follower is told how many lines it missed and gets every state change and the result', { timeout: 2 * FLOOD_TIMEOUT_MS + 60_000 }, async () => {
    const host = await startHost();
    const watcher = await connect(host.url);
    const events = watcher.send('subscribe_events');
    await watcher.next((f) => f.message_id === events && f.event === 'initial_state');
    const unfollowed = await unfollowedFlood(host, watcher, events);
    await watcher.call('firmware/compile', { configuration: 'blocker.yaml' });
    const job = (await watcher.call('firmware/compile', { configuration: 'flood.yaml' })).result as { id: string; status: string };
    expect(job.status).toBe('queued'); // behind the blocker: the flood starts after the follower paused

    const follower = await connect(host.url);
    const follow = follower.send('firmware/follow_job', { job_id: job.id });
    await follower.next((f) => f.message_id === follow && f.event === 'job_state');
    socketOf(follower).pause();
    await host.mark();
    await completion(watcher, events, job.id);
    expectBoundedGrowth(await host.report(), unfollowed);

    socketOf(follower).resume();
    const done = await follower.next((f) => f.message_id === follow && 'result' in f, 60_000);
    expect(done.result).toMatchObject({ id: job.id, status: 'completed' });
    const frames = follower.frames.filter((f) => f.message_id === follow);
    expect(frames.at(-1)).toBe(done);
    expect(frames.filter((f) => f.event === 'job_state').map((f) => (f.data as { status: string }).status)).toEqual(['queued', 'running']);
    const dropped = droppedOf(frames, job.id);
    expect(dropped.length).toBeGreaterThan(0);
    const total = ((await watcher.call('firmware/get_job_output', { job_id: job.id })).result as { total_lines: number }).total_lines;
    expect(total).toBeGreaterThan(FLOOD_LINES);
    // Nothing lost without being told: what arrived plus what the notices count is the whole output.
    expect(linesOf(frames, job.id) + dropped.reduce((n, d) => n + d.dropped_lines, 0)).toBe(total);
  });

  it('firmware/follow_jobs with three paused followers: they add less than 30 MB to what the flood itself costs; each follower gets the notice and every lifecycle event', { timeout: 2 * FLOOD_TIMEOUT_MS + 60_000 }, async () => {
    const host = await startHost();
    const watcher = await connect(host.url);
    const events = watcher.send('subscribe_events');
    await watcher.next((f) => f.message_id === events && f.event === 'initial_state');
    const unfollowed = await unfollowedFlood(host, watcher, events);
    const followers = await Promise.all([1, 2, 3].map(() => connect(host.url)));
    const follows = followers.map((c) => c.send('firmware/follow_jobs'));
    await Promise.all(followers.map((c, i) => c.next((f) => f.message_id === follows[i] && f.event === 'initial_state')));
    for (const c of followers) socketOf(c).pause();
    await host.mark();
    const job = (await watcher.call('firmware/compile', { configuration: 'flood.yaml' })).result as { id: string };
    await completion(watcher, events, job.id);
    expectBoundedGrowth(await host.report(), unfollowed);

    const total = ((await watcher.call('firmware/get_job_output', { job_id: job.id })).result as { total_lines: number }).total_lines;
    for (const [i, c] of followers.entries()) {
      socketOf(c).resume();
      await c.next((f) => f.message_id === follows[i] && f.event === 'job_completed' && (f.data as { id: string }).id === job.id, 60_000);
      const frames = c.frames.filter((f) => f.message_id === follows[i]);
      const lifecycle = frames.filter((f) => f.event?.startsWith('job_') && (f.data as { id?: string }).id === job.id).map((f) => f.event);
      expect(lifecycle).toEqual(['job_queued', 'job_started', 'job_completed']);
      const dropped = droppedOf(frames, job.id);
      expect(dropped.length).toBeGreaterThan(0);
      expect(linesOf(frames, job.id) + dropped.reduce((n, d) => n + d.dropped_lines, 0)).toBe(total);
    }
  });
});
