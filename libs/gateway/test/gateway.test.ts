import { afterEach, describe, expect, it } from 'vitest';
import { Client, startStack, type Frame, type Stack } from './harness.js';

const stacks: Stack[] = [];
const clients: Client[] = [];
async function stack(options: Parameters<typeof startStack>[0] = {}): Promise<Stack> {
  const s = await startStack(options);
  stacks.push(s);
  return s;
}
async function client(s: Stack): Promise<Client> {
  const c = await Client.connect(s.wsUrl);
  clients.push(c);
  return c;
}
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of stacks.splice(0)) await s.close();
});

const resultOf = (f: Frame) => f.result as Record<string, unknown>;

describe('protocol', () => {
  it('greets a new connection with the server info', async () => {
    const s = await stack();
    const c = await client(s);
    const hello = await c.next((f) => f.event === 'server_info');
    expect(hello.data).toMatchObject({ kiln_version: expect.any(String), port: s.gateway.server!.port });
    expect((await c.call('config/version')).result).toMatchObject({ kiln_version: expect.any(String) });
  });

  const bad: Array<[string, (c: Client) => void, (f: Frame) => boolean, string, Record<string, unknown>]> = [
    ['not JSON', (c) => c.sendRaw('{nope'), (f) => f.message_id === null, 'invalid_message', { field: 'frame' }],
    ['an array', (c) => c.sendRaw('[1,2]'), (f) => f.message_id === null, 'invalid_message', { field: 'frame' }],
    ['no message_id', (c) => c.sendRaw('{"command":"config/version"}'), (f) => f.message_id === null, 'invalid_message', { field: 'message_id' }],
    ['a command that is not a string', (c) => c.sendRaw('{"command":7,"message_id":"m1"}'), (f) => f.message_id === 'm1', 'invalid_message', { field: 'command' }],
    ['args that are not an object', (c) => c.sendRaw('{"command":"firmware/compile","message_id":"m2","args":[1]}'), (f) => f.message_id === 'm2', 'invalid_args', { field: 'args' }],
    ['an unknown command', (c) => c.sendRaw('{"command":"firmware/explode","message_id":"m3"}'), (f) => f.message_id === 'm3', 'unknown_command', { command: 'firmware/explode' }],
    ['a missing argument', (c) => c.sendRaw('{"command":"firmware/compile","message_id":"m4","args":{}}'), (f) => f.message_id === 'm4', 'invalid_args', { field: 'configuration' }],
    ['a wrong argument type', (c) => c.sendRaw('{"command":"firmware/compile","message_id":"m5","args":{"configuration":5}}'), (f) => f.message_id === 'm5', 'invalid_args', { field: 'configuration', value: 5 }],
    ['an unknown argument', (c) => c.sendRaw('{"command":"firmware/compile","message_id":"m6","args":{"configuration":"kitchen.yaml","force":true}}'), (f) => f.message_id === 'm6', 'invalid_args', { field: 'force' }],
    ['traversal in a configuration', (c) => c.sendRaw('{"command":"firmware/compile","message_id":"m7","args":{"configuration":"../../etc/passwd.yaml"}}'), (f) => f.message_id === 'm7', 'invalid_args', { field: 'configuration', value: '../../etc/passwd.yaml' }],
    ['an absolute configuration', (c) => c.sendRaw('{"command":"firmware/clean","message_id":"m8","args":{"configuration":"/tmp/x.yaml"}}'), (f) => f.message_id === 'm8', 'invalid_args', { field: 'configuration' }],
    ['a NUL in a configuration', (c) => c.sendRaw(JSON.stringify({ command: 'firmware/compile', message_id: 'm9', args: { configuration: 'a\u0000.yaml' } })), (f) => f.message_id === 'm9', 'invalid_args', { field: 'configuration' }],
    ['a non-yaml configuration', (c) => c.sendRaw('{"command":"firmware/compile","message_id":"m10","args":{"configuration":"kitchen.txt"}}'), (f) => f.message_id === 'm10', 'invalid_args', { field: 'configuration' }],
    ['an unknown configuration', (c) => c.sendRaw('{"command":"firmware/compile","message_id":"m11","args":{"configuration":"nope.yaml"}}'), (f) => f.message_id === 'm11', 'not_found', { configuration: 'nope.yaml' }],
    ['an unknown job', (c) => c.sendRaw('{"command":"firmware/get_job","message_id":"m12","args":{"job_id":"no-such-job"}}'), (f) => f.message_id === 'm12', 'not_found', { job_id: 'no-such-job' }],
    ['follow of an unknown job', (c) => c.sendRaw('{"command":"firmware/follow_job","message_id":"m13","args":{"job_id":"no-such-job"}}'), (f) => f.message_id === 'm13', 'not_found', { job_id: 'no-such-job' }],
  ];
  it.each(bad)('%s gets an error frame naming the problem; nothing is queued', async (_name, send, match, code, details) => {
    const s = await stack();
    const c = await client(s);
    await c.next((f) => f.event === 'server_info');
    send(c);
    const err = await c.next((f) => 'error_code' in f && match(f));
    expect(err.error_code).toBe(code);
    expect(err.details).toMatchObject({ message: expect.any(String), ...details });
    expect(resultOf(await c.call('firmware/get_jobs'))).toEqual([]);
  });
});

describe('firmware commands', () => {
  it('install over the socket: follow_job sends history, live output, then the final job as the result', async () => {
    const s = await stack();
    const c = await client(s);
    const install = resultOf(await c.call('firmware/install', { configuration: 'kitchen.yaml', port: 'OTA' }));
    expect(install).toMatchObject({ type: 'compile', status: expect.stringMatching(/^(queued|running)$/), upload: { type: 'upload', held: true, depends_on: install.id } });
    const follow = c.send('firmware/follow_job', { job_id: install.id });
    const done = await c.next((f) => f.message_id === follow && 'result' in f);
    expect(done.result).toMatchObject({ id: install.id, status: 'completed', progress: 100 });
    const frames = c.frames.filter((f) => f.message_id === follow);
    expect(frames[0]).toMatchObject({ event: 'job_state' });
    const lines = frames.filter((f) => f.event === 'job_output').flatMap((f) => (f.data as { lines: string[] }).lines);
    expect(lines[0]).toMatch(/esphome-sim: simulated toolchain/);
    expect(lines.filter((l) => l.includes('Successfully compiled program'))).toHaveLength(1);
    const upload = (install.upload as { id: string }).id;
    const uploaded = await c.call('firmware/follow_job', { job_id: upload });
    expect(uploaded.result).toMatchObject({ status: 'completed', type: 'upload' });
    const listed = resultOf(await c.call('firmware/get_jobs', { status: 'completed' })) as unknown as Array<{ id: string }>;
    expect(listed.map((j) => j.id).sort()).toEqual([install.id, upload].sort());
    expect(s.gateway.server!.streamCount()).toBe(0);
  });

  it('a slow follower is dropped output but still gets the final result', async () => {
    const s = await stack({ knobs: { default: { compileMs: 0, steps: 2, floodLines: 60_000, floodLineBytes: 200 } }, settings: { 'gateway.streamCapacity': '20' } });
    const c = await client(s);
    const job = resultOf(await c.call('firmware/compile', { configuration: 'kitchen.yaml' }));
    const follow = c.send('firmware/follow_job', { job_id: job.id });
    await c.next((f) => f.message_id === follow && f.event === 'job_state');
    // Stop reading: the server's sends back up and its queue for this client overflows.
    const socket = (c.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    socket.pause();
    const watcher = await client(s);
    await watcher.call('firmware/follow_job', { job_id: job.id }).then((f) => expect(f.result).toMatchObject({ status: 'completed' }));
    socket.resume();
    const done = await c.next((f) => f.message_id === follow && 'result' in f);
    expect(done.result).toMatchObject({ status: 'completed' });
    const received = c.frames.filter((f) => f.message_id === follow && f.event === 'job_output').reduce((n, f) => n + (f.data as { lines: string[] }).lines.length, 0);
    expect(received).toBeLessThan(60_000);
  });

  it('100 concurrent followers of one job all get its output and result; their listeners are released', async () => {
    const s = await stack({ knobs: { default: { compileMs: 1_000, steps: 20 } } });
    const c = await client(s);
    const job = resultOf(await c.call('firmware/compile', { configuration: 'porch.yaml' }));
    const baseline = s.bus.subscriptionCount();
    const followers = await Promise.all(Array.from({ length: 100 }, () => client(s)));
    const results = await Promise.all(followers.map((f) => f.call('firmware/follow_job', { job_id: job.id })));
    expect(results.every((r) => (r.result as { status: string }).status === 'completed')).toBe(true);
    for (const f of followers) {
      const lines = f.frames.filter((x) => x.event === 'job_output').flatMap((x) => (x.data as { lines: string[] }).lines);
      expect(lines.filter((l) => l.includes('[20/20]'))).toHaveLength(1);
    }
    expect(s.gateway.server!.streamCount()).toBe(0);
    expect(s.bus.subscriptionCount()).toBe(baseline);
  });

  it('subscribe_events fails closed: overflow sends an error frame, then the socket closes', async () => {
    const s = await stack({ devices: ['a', 'b', 'c', 'd', 'e', 'f'], settings: { 'gateway.streamCapacity': '3' } });
    const c = await client(s);
    const sub = c.send('subscribe_events');
    await c.next((f) => f.message_id === sub && f.event === 'initial_state');
    const socket = (c.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    socket.pause();
    const other = await client(s);
    const jobs = resultOf(await other.call('firmware/compile_bulk', { configurations: ['a.yaml', 'b.yaml', 'c.yaml', 'd.yaml', 'e.yaml', 'f.yaml'] })) as unknown as Array<{ id: string }>;
    await other.call('firmware/follow_job', { job_id: jobs.at(-1)!.id });
    const baseline = s.bus.subscriptionCount();
    socket.resume();
    const err = await c.next((f) => f.message_id === sub && 'error_code' in f);
    expect(err.error_code).toBe('unavailable');
    expect((await c.closed).code).toBe(1013);
    expect(c.frames.indexOf(err)).toBe(c.frames.length - 1);
    expect(s.bus.subscriptionCount()).toBeLessThanOrEqual(baseline);
  });

  it('stop_stream and disconnect release every listener', async () => {
    const s = await stack();
    const baseline = s.bus.subscriptionCount();
    const c = await client(s);
    const a = c.send('firmware/follow_jobs');
    const b = c.send('subscribe_events');
    await c.next((f) => f.message_id === a && f.event === 'initial_state');
    await c.next((f) => f.message_id === b && f.event === 'initial_state');
    expect(s.bus.subscriptionCount()).toBeGreaterThan(baseline);
    expect((await c.call('stop_stream', { message_id: a })).result).toEqual({ stopped: true });
    expect(s.gateway.server!.streamCount()).toBe(1);
    c.close();
    await c.closed;
    for (let i = 0; i < 100 && s.gateway.server!.streamCount() > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(s.gateway.server!.streamCount()).toBe(0);
    expect(s.bus.subscriptionCount()).toBe(baseline);
  });

  it('subscribe_events carries job progress (for the lanes view) between a job\'s started and completed', async () => {
    const s = await stack();
    const c = await client(s);
    const sub = c.send('subscribe_events');
    await c.next((f) => f.message_id === sub && f.event === 'initial_state');
    const job = resultOf(await c.call('firmware/compile', { configuration: 'kitchen.yaml' }));
    await c.next((f) => f.message_id === sub && f.event === 'job_completed');
    const mine = c.frames.filter((f) => f.message_id === sub && f.event !== 'initial_state');
    const progress = mine.filter((f) => f.event === 'job_progress');
    expect(progress.length).toBeGreaterThan(0);
    for (const p of progress) expect(p.data).toEqual({ job_id: job.id, progress: expect.any(Number) });
    const events = mine.map((f) => f.event);
    expect(events.indexOf('job_started')).toBeLessThan(events.indexOf('job_progress'));
    expect(events.lastIndexOf('job_progress')).toBeLessThan(events.indexOf('job_completed'));
  });

  it('follow_jobs: a snapshot of the jobs, then live lifecycle events in order', async () => {
    const s = await stack();
    const c = await client(s);
    const follow = c.send('firmware/follow_jobs');
    const initial = await c.next((f) => f.message_id === follow && f.event === 'initial_state');
    expect(initial.data).toEqual({ jobs: [] });
    const job = resultOf(await c.call('firmware/compile', { configuration: 'kitchen.yaml' }));
    await c.next((f) => f.message_id === follow && f.event === 'job_completed');
    const lifecycle = c.frames.filter((f) => f.message_id === follow && typeof f.event === 'string' && f.event.startsWith('job_') && !['job_output', 'job_progress'].includes(f.event));
    expect(lifecycle.map((f) => [f.event, (f.data as { id: string }).id])).toEqual([
      ['job_queued', job.id],
      ['job_started', job.id],
      ['job_completed', job.id],
    ]);
  });
});

describe('devices', () => {
  it('lists, creates, reads, updates and deletes devices; subscribe_events reports a file written on disk', async () => {
    const s = await stack();
    const c = await client(s);
    const sub = c.send('subscribe_events');
    const initial = await c.next((f) => f.message_id === sub && f.event === 'initial_state');
    expect((initial.data as { devices: Array<{ configuration: string }> }).devices.map((d) => d.configuration)).toEqual(['kitchen.yaml', 'porch.yaml']);

    const created = resultOf(await c.call('devices/create', { name: 'Garage Door', platform: 'esp8266', board_id: 'd1_mini' }));
    expect(created).toMatchObject({ configuration: 'garage-door.yaml', name: 'garage-door', friendly_name: 'Garage Door', platform: 'esp8266', board: 'd1_mini' });
    expect((await c.call('devices/create', { name: 'Garage Door' })).error_code).toBe('already_exists');

    const config = resultOf(await c.call('devices/get_config', { configuration: 'garage-door.yaml' }));
    expect(config.content).toMatch(/name: garage-door/);
    const updated = resultOf(await c.call('devices/update_config', { configuration: 'garage-door.yaml', content: String(config.content).replace('d1_mini', 'nodemcuv2') }));
    expect(updated).toMatchObject({ board: 'nodemcuv2' });
    const bad = await c.call('devices/update_config', { configuration: 'garage-door.yaml', content: 'esphome: [' });
    expect(bad).toMatchObject({ error_code: 'invalid_args', details: { field: 'content' } });

    const { writeFile } = await import('node:fs/promises');
    const { join } = await import('node:path');
    await writeFile(join(s.configDir, 'attic.yaml'), 'esphome:\n  name: attic\nrp2040:\n  board: rpipicow\n');
    const added = await c.next((f) => f.message_id === sub && f.event === 'device_added' && (f.data as { configuration: string }).configuration === 'attic.yaml');
    expect(added.data).toMatchObject({ name: 'attic', platform: 'rp2040' });

    expect(resultOf(await c.call('devices/delete', { configuration: 'garage-door.yaml' }))).toEqual({ configuration: 'garage-door.yaml', deleted: true });
    await c.next((f) => f.message_id === sub && f.event === 'device_removed' && (f.data as { configuration: string }).configuration === 'garage-door.yaml');
    const listed = resultOf(await c.call('devices/list')) as { configured: Array<{ configuration: string }> };
    expect(listed.configured.map((d) => d.configuration)).toEqual(['attic.yaml', 'kitchen.yaml', 'porch.yaml']);
    expect((await c.call('devices/get_config', { configuration: '../secrets.yaml' })).error_code).toBe('invalid_args');
  });
});

describe('artifact downloads', () => {
  it('lists the built binaries, mints a single-use token and serves the bytes exactly', async () => {
    const s = await stack({ knobs: { default: { compileMs: 100, steps: 3, firmwareBytes: 700_000 } } });
    const c = await client(s);
    expect(resultOf(await c.call('firmware/get_binaries', { configuration: 'kitchen.yaml' }))).toEqual({ configuration: 'kitchen.yaml', files: [] });
    expect((await c.call('firmware/download_token', { configuration: 'kitchen.yaml', file: 'firmware.bin' })).error_code).toBe('not_found');
    const job = resultOf(await c.call('firmware/compile', { configuration: 'kitchen.yaml' }));
    await c.call('firmware/follow_job', { job_id: job.id });
    const listed = resultOf(await c.call('firmware/get_binaries', { configuration: 'kitchen.yaml' })) as { files: Array<{ file: string; size: number }> };
    expect(listed.files.map((f) => f.file)).toEqual(expect.arrayContaining(['firmware.bin', 'firmware.factory.bin', 'firmware.ota.bin']));
    const minted = resultOf(await c.call('firmware/download_token', { configuration: 'kitchen.yaml', file: 'firmware.bin' })) as { token: string; url: string };
    expect(minted.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const res = await fetch(`${s.gateway.server!.url}${minted.url}`);
    expect(res.status).toBe(200);
    const body = Buffer.from(await res.arrayBuffer());
    const { readFile } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const onDisk = await readFile(join(s.configDir, '.esphome/build/kitchen/.pioenvs/kitchen/firmware.bin'));
    expect(body.length).toBe(onDisk.length);
    expect(body.equals(onDisk)).toBe(true);
    // Single use: the same token is refused the second time, as is a made-up one.
    expect((await fetch(`${s.gateway.server!.url}${minted.url}`)).status).toBe(403);
    expect((await fetch(`${s.gateway.server!.url}/api/firmware/download?token=guess`)).status).toBe(403);
    expect((await c.call('firmware/download_token', { configuration: 'kitchen.yaml', file: '../../secrets.yaml' })).error_code).toBe('not_found');
  });
});

describe('login', () => {
  it('with a password set, nothing but auth/login works until a connection logs in; tokens resume and logout revokes', async () => {
    const s = await stack({ settings: { 'gateway.password': 'correct horse battery' } });
    const c = await client(s);
    const refused = await c.call('firmware/get_jobs');
    expect(refused).toMatchObject({ error_code: 'not_authenticated', details: { command: 'firmware/get_jobs' } });
    expect((await c.call('auth/login', { username: 'admin', password: 'wrong password!' })).error_code).toBe('not_authenticated');
    expect((await c.call('auth/login', { username: 'root', password: 'correct horse battery' })).error_code).toBe('not_authenticated');
    expect((await c.call('auth/login', { password: 5 })).error_code).toBe('invalid_args');
    const login = resultOf(await c.call('auth/login', { username: 'admin', password: 'correct horse battery' }));
    expect(login).toMatchObject({ authenticated: true, token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    expect(resultOf(await c.call('firmware/get_jobs'))).toEqual([]);

    const second = await client(s);
    expect((await second.call('devices/list')).error_code).toBe('not_authenticated');
    expect(resultOf(await second.call('auth/login', { token: login.token }))).toMatchObject({ authenticated: true });
    expect((await second.call('devices/list')).result).toBeDefined();

    expect(resultOf(await c.call('auth/logout'))).toEqual({ logged_out: true });
    expect((await c.closed).code).toBe(1000);
    // The token is revoked for every connection that used it.
    expect((await second.call('devices/list')).error_code).toBe('not_authenticated');
    const third = await client(s);
    expect((await third.call('auth/login', { token: login.token })).error_code).toBe('not_authenticated');
  });

  it('without a password every connection is trusted and auth/login says so', async () => {
    const s = await stack();
    const c = await client(s);
    expect(resultOf(await c.call('auth/login', { password: 'anything' }))).toEqual({ authenticated: true, required: false });
  });
});
