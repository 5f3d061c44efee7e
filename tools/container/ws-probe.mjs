// A client of the gateway's WebSocket API, from outside the container, through the mapped port: logs in,
// creates a device, compiles it and waits for the job to end. Prints the outcome as one JSON line.
//   node tools/container/ws-probe.mjs ws://127.0.0.1:16052/ws <password>
import WebSocket from 'ws';

const [url, password] = process.argv.slice(2);
if (!url || !password) throw new Error('usage: ws-probe.mjs <ws url> <password>');
const socket = new WebSocket(url);
const pending = new Map();
let nextId = 1;
socket.on('message', (raw) => {
  const frame = JSON.parse(raw.toString());
  const waiter = pending.get(frame.message_id);
  if (!waiter || frame.event) return;
  pending.delete(frame.message_id);
  if (frame.error_code) waiter.reject(new Error(`${frame.error_code}: ${JSON.stringify(frame.details)}`));
  else waiter.resolve(frame.result);
});
const call = (command, args = {}) =>
  new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    socket.send(JSON.stringify({ command, message_id: id, args }));
  });

const started = Date.now();
let outcome;
try {
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  const refused = await call('devices/list').then(() => 'answered', (err) => err.message.split(':')[0]);
  const login = await call('auth/login', { password });
  await call('devices/create', { name: 'porch', platform: 'esp32', board_id: 'esp32dev', overwrite: true });
  const job = await call('firmware/compile', { configuration: 'porch.yaml' });
  let now = job;
  while (!['completed', 'failed', 'cancelled'].includes(now.status) && Date.now() - started < 60_000) {
    await new Promise((r) => setTimeout(r, 100));
    now = await call('firmware/get_job', { job_id: job.id });
  }
  outcome = { beforeLogin: refused, authenticated: login.authenticated, jobId: job.id, job: now.status, error: now.error ?? undefined, ms: Date.now() - started };
} catch (err) {
  outcome = { error: err.message };
} finally {
  socket.close();
}
process.stdout.write(`${JSON.stringify(outcome)}\n`);
process.exitCode = outcome.job === 'completed' ? 0 : 1;
