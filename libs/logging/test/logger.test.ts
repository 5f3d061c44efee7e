import { describe, expect, it } from 'vitest';
import { createRootLogger, memoryDestination, serviceLogger } from '../src/index.js';

describe('logger', () => {
  it('every line a service writes carries its service field as JSON', async () => {
    const sink = memoryDestination();
    const root = await createRootLogger({ destination: sink, pretty: false, level: 'info' });
    serviceLogger(root, 'logstore').info({ jobId: 'j1' }, 'appended');
    serviceLogger(root, 'firmware').debug('hidden below level');
    await new Promise((r) => setImmediate(r));
    expect(sink.records).toHaveLength(1);
    expect(sink.records[0]).toMatchObject({ service: 'logstore', jobId: 'j1', msg: 'appended', level: 30 });
  });
});
