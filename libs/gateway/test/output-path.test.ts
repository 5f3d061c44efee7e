import { logStorePb, logStoreSubjects } from '@kiln/contracts';
import { afterEach, describe, expect, it } from 'vitest';
import { Client, startStack, type Stack } from './harness.js';

let stack: Stack | undefined;
let client: Client | undefined;
afterEach(async () => {
  client?.close();
  await stack?.close();
  stack = client = undefined;
});

const FLOOD_LINES = 10_000;

describe('job output has one owner, the log store', () => {
  it('a 10,000-line job: each output batch is appended once and announced once (kiln.logstore.lines), never republished by the firmware service', async () => {
    // flushBytes 1: the log store commits every append on its own, so its announcements line up one to one with the firmware's batches.
    stack = await startStack({ knobs: { default: { compileMs: 0, steps: 2, floodLines: FLOOD_LINES, floodLineBytes: 80 } }, settings: { 'logstore.flushBytes': '1' } });
    const appends: number[] = []; // lines per append request (the firmware's batches)
    const announced: Array<{ jobId: string; firstSeq: number; lines: number }> = [];
    const subjects = new Map<string, number>();
    // Every message on the bus: publishes and requests alike.
    stack.bus.subscribe('>', (msg) => {
      subjects.set(msg.subject, (subjects.get(msg.subject) ?? 0) + 1);
      if (msg.subject === 'kiln.logstore.append') appends.push(logStorePb.AppendRequest.decode(msg.data).lines.length);
      if (msg.subject.startsWith('kiln.logstore.lines.')) {
        const e = logStorePb.LinesAppended.decode(msg.data);
        expect(msg.subject).toBe(logStoreSubjects.lines(e.jobId));
        announced.push({ jobId: e.jobId, firstSeq: e.firstSeq, lines: e.lines.length });
      }
    });
    client = await Client.connect(stack.wsUrl);
    const job = (await client.call('firmware/compile', { configuration: 'kitchen.yaml' })).result as { id: string };
    const follow = await client.call('firmware/follow_job', { job_id: job.id });
    expect(follow.result).toMatchObject({ status: 'completed' });
    const total = ((await client.call('firmware/get_job_output', { job_id: job.id })).result as { total_lines: number }).total_lines;
    await stack.bus.flush();

    expect(total).toBeGreaterThan(FLOOD_LINES);
    // The firmware's batches: at most 500 lines each (the batcher's cap), every line in exactly one.
    expect(appends.reduce((a, b) => a + b, 0)).toBe(total);
    expect(Math.max(...appends)).toBeLessThanOrEqual(500);
    expect(appends.length).toBeGreaterThanOrEqual(Math.ceil(total / 500));
    // Published output: one message per batch, each line once, in order; nothing from the firmware service.
    expect(announced).toHaveLength(appends.length);
    expect(announced.map((a) => a.lines)).toEqual(appends);
    let next = 0;
    for (const a of announced) {
      expect(a).toMatchObject({ jobId: job.id, firstSeq: next });
      next += a.lines;
    }
    expect(subjects.get('kiln.firmware.job.output') ?? 0).toBe(0);
    const carryingLines = [...subjects].filter(([s]) => s === 'kiln.logstore.append' || s.startsWith('kiln.logstore.lines.') || s === 'kiln.firmware.job.output');
    console.log(`10,000-line job: ${total} lines, ${appends.length} batches; bus messages carrying lines: ${JSON.stringify(Object.fromEntries(carryingLines))}`);
  });
});
