// Runs inside the booted container's network namespace (nsenter -n), with the checkout's compiled libraries:
// compiles one configuration through the firmware service on the container's NATS and prints the outcome.
//   node tools/systemd/compile-probe.mjs porch.yaml   → {"status":"completed","jobId":"…","ms":812}
import { connectNatsBus } from '@kiln/bus';
import { busClient, firmwarePb } from '@kiln/contracts';

const configuration = process.argv[2] ?? 'porch.yaml';
const S = firmwarePb.JobStatus;
const bus = await connectNatsBus({ servers: 'nats://127.0.0.1:4222', timeoutMs: 5_000 });
const started = Date.now();
let outcome;
try {
  const firmware = busClient(bus, firmwarePb.FirmwareServiceDefinition);
  const { job } = await firmware.compile({ configuration });
  for (;;) {
    const { job: now } = await firmware.getJob({ jobId: job.id });
    if (now.status === S.JOB_STATUS_COMPLETED || now.status === S.JOB_STATUS_FAILED || now.status === S.JOB_STATUS_CANCELLED) {
      outcome = { status: now.status === S.JOB_STATUS_COMPLETED ? 'completed' : now.status === S.JOB_STATUS_FAILED ? 'failed' : 'cancelled', jobId: job.id, error: now.error || undefined, ms: Date.now() - started };
      break;
    }
    if (Date.now() - started > 60_000) {
      outcome = { status: 'timeout', jobId: job.id, ms: Date.now() - started };
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
} finally {
  await bus.close();
}
process.stdout.write(`${JSON.stringify(outcome)}\n`);
process.exitCode = outcome.status === 'completed' ? 0 : 1;
