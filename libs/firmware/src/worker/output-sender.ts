import type { Bus } from '@kiln/bus';
import { busClient, firmwareWorkerPb as wpb } from '@kiln/contracts';
import { LineBatcher } from '../jobs/line-batcher.js';

/**
 * A worker's output for one job, sent to the firmware service in batches, in order, one request at a
 * time: reading the child's output slows down to the firmware service's (and so the log store's)
 * pace. The first failed send (owner gone) sticks and nothing more is sent.
 */
export class OutputSender extends LineBatcher {
  constructor(bus: Bus, jobId: string, batchMs: number, timeoutMs: number) {
    const owner = busClient(bus, wpb.WorkerJobServiceDefinition, { scope: jobId, timeoutMs });
    super(batchMs, async (lines) => {
      if (!this.failure) await owner.output({ jobId, lines });
    });
  }
}
