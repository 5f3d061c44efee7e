// The compile-worker protocol (`kiln worker compile` ⇄ the firmware service) is declared in proto
// (WorkerService, WorkerJobService in kiln/firmware/v1/worker.proto); worker ids and job ids scope
// their subjects (see subjects.ts).

/** A worker id is one NATS subject token: no dots, no wildcards, no spaces. */
export const WORKER_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
