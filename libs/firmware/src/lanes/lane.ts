import type { firmwarePb as pb } from '@kiln/contracts';

/**
 * One lane: a FIFO of queued job ids and the set running now, bounded by `slots`, which follow the
 * lane's executor: locally the compile lane has one slot (a compile saturates the CPU) and the upload
 * lane as many as configured; with compile workers, one per live worker.
 */
export class Lane {
  readonly queue: string[] = [];
  readonly running = new Set<string>();
  /** Of `running`, the jobs sent to one receiver: they occupy that receiver, not a slot of the lane. */
  readonly pinned = new Set<string>();

  constructor(
    readonly name: pb.LaneName,
    private readonly capacity: () => number,
  ) {}

  get slots(): number {
    return this.capacity();
  }

  get free(): number {
    return this.slots - (this.running.size - this.pinned.size);
  }

  enqueue(jobId: string): void {
    if (!this.queue.includes(jobId)) this.queue.push(jobId);
  }

  remove(jobId: string): void {
    const i = this.queue.indexOf(jobId);
    if (i >= 0) this.queue.splice(i, 1);
    this.running.delete(jobId);
    this.pinned.delete(jobId);
  }

  status(): pb.LaneStatus {
    return { lane: this.name, idle: this.running.size === 0 && this.queue.length === 0, runningJobIds: [...this.running], depth: this.queue.length, slots: this.slots };
  }
}
