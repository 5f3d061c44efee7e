import { randomUUID } from 'node:crypto';
import { lstat } from 'node:fs/promises';
import type { Bus } from '@kiln/bus';
import { encode, firmwarePb as pb, firmwareSubjects, readOutputTail, REMOTE_JOB_TARGETS, type BusImplementation, type FirmwareEventName, type LogStoreApi } from '@kiln/contracts';
import { assertSafeId, invalidArgs, isNoSpaceError, isSafeId, KilnError, notFound, removeBuildOutputs, resolveBuildPaths, resolveConfigurationFile, type Clock } from '@kiln/core';
import type { Logger } from '@kiln/logging';
import { isActive, isMaintenance, isTerminal, JobStatus, JobType, laneFor, LaneName, PREREQUISITE_FAILED, statusName, typeName, type Job } from './jobs/job.js';
import { blameStorage, JobRun, publishProgress, type RunOutcome } from './jobs/job-runner.js';
import { uploadPortArg } from './jobs/upload-port.js';
import { listArtifacts, readArtifact } from './artifacts.js';
import { BuildGate } from './lanes/build-gate.js';
import { Lane } from './lanes/lane.js';
import { JobStore } from './persistence/job-store.js';
import type { FirmwareSettings } from './settings.js';
import type { RunningGroups, Toolchain } from '@kiln/toolchain';
import type { JobExecutor, PinnedState } from './executors/executor.js';
import { remoteJobArtifacts } from './remote-artifacts.js';
import { LocalExecutor } from './executors/local-executor.js';
import { firmwareRunningGroups } from './persistence/running-groups.js';

export interface FirmwareCoreDeps {
  dataDir: string;
  configDir: string;
  settings: FirmwareSettings;
  toolchain: Toolchain;
  /** Where compile-lane jobs run; default: locally through `toolchain`, one at a time. */
  compileExecutor?: JobExecutor;
  logs: LogStoreApi;
  bus: Bus;
  logger: Logger;
  clock: Clock;
}

const LIFECYCLE: Partial<Record<pb.JobStatus, { event: FirmwareEventName; codec: { encode(m: { job?: Job }): { finish(): Uint8Array } } }>> = {
  [JobStatus.JOB_STATUS_QUEUED]: { event: 'queued', codec: pb.JobQueued },
  [JobStatus.JOB_STATUS_RUNNING]: { event: 'started', codec: pb.JobStarted },
  [JobStatus.JOB_STATUS_COMPLETED]: { event: 'completed', codec: pb.JobCompleted },
  [JobStatus.JOB_STATUS_FAILED]: { event: 'failed', codec: pb.JobFailed },
  [JobStatus.JOB_STATUS_CANCELLED]: { event: 'cancelled', codec: pb.JobCancelled },
};

/**
 * The firmware lanes. Every state change follows one order: mutate, persist (await), announce.
 * Scheduling is event driven: `pump()` runs after every change and starts what may start.
 */
export class FirmwareCore
  implements BusImplementation<pb.FirmwareServiceDefinition>, BusImplementation<pb.RemoteJobServiceDefinition>, BusImplementation<pb.BuildTreeServiceDefinition>
{
  private readonly jobs = new Map<string, Job>();
  private readonly runs = new Map<string, JobRun>();
  /** Each running job's bookkeeping, settled once its run has ended and its outcome is committed. */
  private readonly runsSettled = new Map<string, Promise<void>>();
  /** Configurations whose build outputs are being removed (`forgetBuild`): their jobs stay off the lanes. */
  private readonly forgetting = new Map<string, number>();
  private readonly lanes: Record<pb.LaneName.LANE_NAME_COMPILE | pb.LaneName.LANE_NAME_UPLOAD, Lane>;
  private readonly gate = new BuildGate(() => this.jobs.values());
  private readonly store: JobStore;
  private readonly executors: Record<pb.LaneName.LANE_NAME_COMPILE | pb.LaneName.LANE_NAME_UPLOAD, JobExecutor>;
  /** Jobs to re-run (after a restart or a lost worker): their next run starts with this notice in the log. */
  private readonly notices = new Map<string, string>();
  /** Jobs already re-run once after their executor lost them: a second loss fails them. */
  private readonly lostOnce = new Set<string>();
  /** The process group of every toolchain process running here, reaped by `restore` after a crash. */
  private readonly groups: RunningGroups;
  private stopped = false;

  constructor(private readonly deps: FirmwareCoreDeps) {
    this.groups = firmwareRunningGroups(deps.dataDir);
    this.executors = {
      [LaneName.LANE_NAME_COMPILE]: deps.compileExecutor ?? new LocalExecutor(deps.toolchain, deps.configDir, 1, this.groups),
      // Flashing always happens here: the device is reachable from this host.
      [LaneName.LANE_NAME_UPLOAD]: new LocalExecutor(deps.toolchain, deps.configDir, deps.settings.uploadSlots, this.groups),
    };
    const capacityOf = (lane: keyof typeof this.executors) => () => this.executors[lane].capacity;
    this.lanes = {
      [LaneName.LANE_NAME_COMPILE]: new Lane(LaneName.LANE_NAME_COMPILE, capacityOf(LaneName.LANE_NAME_COMPILE)),
      [LaneName.LANE_NAME_UPLOAD]: new Lane(LaneName.LANE_NAME_UPLOAD, capacityOf(LaneName.LANE_NAME_UPLOAD)),
    };
    this.executors[LaneName.LANE_NAME_COMPILE].onCapacityChange(() => this.pump());
    this.store = new JobStore(deps.dataDir, () => [...this.jobs.values()], deps.logger);
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  get runningCount(): number {
    return this.runs.size;
  }

  /** The compile lane's executor (started and stopped by the service). */
  get compileExecutor(): JobExecutor {
    return this.executors[LaneName.LANE_NAME_COMPILE];
  }

  // ---- commands: FirmwareService (firmware.proto), each takes its request message -----------

  async compile({ configuration }: pb.CompileRequest): Promise<pb.JobResponse> {
    return { job: (await this.enqueue([this.newJob(await this.configurationArg(configuration), JobType.JOB_TYPE_COMPILE)]))[0]! };
  }

  async upload({ configuration, port }: pb.UploadRequest): Promise<pb.JobResponse> {
    const job = this.newJob(await this.configurationArg(configuration), JobType.JOB_TYPE_UPLOAD, { port: uploadPortArg(port) });
    return { job: (await this.enqueue([job]))[0]! };
  }

  /** COMPILE + dependent UPLOAD, created, placed, persisted and announced together. */
  async install({ configuration, port }: pb.InstallRequest): Promise<pb.InstallResponse> {
    const [compile, upload] = await this.enqueue(this.installChain(await this.configurationArg(configuration), uploadPortArg(port)));
    return { compile, upload };
  }

  async installBulk({ items }: pb.InstallBulkRequest): Promise<pb.JobsResponse> {
    if (!Array.isArray(items) || items.length === 0) throw new KilnError('invalid_args', 'items: needs at least one {configuration, port}', { field: 'items', value: items });
    const chains: Job[] = [];
    for (const [i, item] of items.entries()) {
      const configuration = await this.configurationArg(item.configuration, `items[${i}].configuration`);
      chains.push(...this.installChain(configuration, uploadPortArg(item.port, `items[${i}].port`)));
    }
    return { jobs: await this.enqueue(chains) };
  }

  async compileBulk({ configurations }: pb.CompileBulkRequest): Promise<pb.JobsResponse> {
    if (!Array.isArray(configurations) || configurations.length === 0) {
      throw new KilnError('invalid_args', 'configurations: needs at least one configuration', { field: 'configurations', value: configurations });
    }
    const jobs: Job[] = [];
    for (const [i, c] of configurations.entries()) jobs.push(this.newJob(await this.configurationArg(c, `configurations[${i}]`), JobType.JOB_TYPE_COMPILE));
    return { jobs: await this.enqueue(jobs) };
  }

  /** A clean is a request for a fresh build: it supersedes the device's in-flight chain. */
  async clean({ configuration }: pb.CleanRequest): Promise<pb.JobResponse> {
    return { job: (await this.enqueue([this.newJob(await this.configurationArg(configuration), JobType.JOB_TYPE_CLEAN)]))[0]! };
  }

  /** Wipes the whole build tree, so every active job on every lane is cancelled first. */
  async resetBuildEnv(_request: pb.ResetBuildEnvRequest = {}): Promise<pb.JobResponse> {
    const job = this.newJob('', JobType.JOB_TYPE_RESET_BUILD_ENV);
    const cancelled = this.cancelWhere(() => true, 'cancelled by reset_build_env');
    return { job: (await this.enqueue([job], cancelled))[0]! };
  }

  /** esphome rename: `<new>.yaml` is written, built and flashed over the air; the old YAML goes on success. */
  async rename({ configuration, newName }: pb.RenameRequest): Promise<pb.JobResponse> {
    const from = await this.configurationArg(configuration);
    if (typeof newName !== 'string' || !DEVICE_NAME.test(newName)) {
      throw new KilnError('invalid_args', `new_name: must be 1-31 lowercase letters, digits or hyphens (got ${JSON.stringify(newName)})`, { field: 'new_name', value: newName });
    }
    const target = `${newName}.yaml`;
    // lstat, not stat: a dangling link named like the target would have esphome write through it.
    if (await entryExists(resolveBuildPaths(this.deps.configDir, target).yaml)) {
      throw new KilnError('already_exists', `configuration ${target} already exists`, { new_name: newName });
    }
    return { job: (await this.enqueue([this.newJob(from, JobType.JOB_TYPE_RENAME, { newName })]))[0]! };
  }

  async cancel({ jobId }: pb.CancelRequest): Promise<pb.JobResponse> {
    const job = this.jobArg(jobId);
    if (isTerminal(job)) {
      throw new KilnError('failed_precondition', `job ${jobId} is already ${statusName(job.status)}`, { job_id: jobId, status: statusName(job.status) });
    }
    const changed = this.cancelWhere((j) => j.id === jobId);
    await this.commit(changed);
    return { job };
  }

  // ---- BuildTreeService: the build tree on behalf of the other services ----------------------

  /**
   * Remove what builds of a configuration left (the devices service calls this when a device is
   * deleted). Like a newer job of the configuration, it cancels the configuration's active jobs; it
   * then waits until none of them runs (a running compile's process tree is gone) and holds new ones
   * off the lanes while the StorageJSON and build dir are removed, so no delete races a compile or an
   * upload reading those files. The YAML is the caller's.
   */
  async forgetBuild({ configuration, deviceName }: pb.ForgetBuildRequest): Promise<pb.ForgetBuildResponse> {
    const paths = resolveBuildPaths(this.deps.configDir, configuration);
    if (deviceName !== '' && !isSafeId(deviceName)) throw invalidArgs('device_name', deviceName, 'must be a plain device name (letters, digits, ".", "_", "-")');
    this.forgetting.set(configuration, (this.forgetting.get(configuration) ?? 0) + 1);
    try {
      // Until no job of it runs: one created meanwhile (its request passed the YAML check just before
      // the delete) is cancelled like the others.
      for (;;) {
        const cancelled = this.cancelWhere((job) => job.configuration === configuration, FORGOTTEN);
        if (cancelled.length > 0) await this.commit(cancelled);
        const running = [...this.runsSettled].filter(([id]) => this.jobs.get(id)?.configuration === configuration).map(([, settled]) => settled);
        if (running.length === 0) break;
        await Promise.all(running);
      }
      await removeBuildOutputs(paths, deviceName);
    } finally {
      const left = (this.forgetting.get(configuration) ?? 1) - 1;
      if (left > 0) this.forgetting.set(configuration, left);
      else this.forgetting.delete(configuration);
      this.pump();
    }
    return {};
  }

  // ---- RemoteJobService (remote_build/submit_job, cancel_job, download_artifacts): builds sent to one receiver ----

  /**
   * A compile pinned to the receiver behind `pin` (target `install`: plus the usual dependent local
   * upload to `port`). An ordinary job otherwise: same lanes, events, history and cancel. Refused at
   * once when that receiver cannot take it (not paired, not connected, version refused).
   */
  async submitJob({ pinSha256, configuration, target, port }: pb.SubmitRemoteJobRequest): Promise<pb.InstallResponse> {
    const pin = await pinArgOf(pinSha256);
    const name = await this.configurationArg(configuration);
    const wanted = target || 'compile';
    if (!(REMOTE_JOB_TARGETS as readonly string[]).includes(wanted)) throw invalidArgs('target', target, `must be one of ${REMOTE_JOB_TARGETS.join(', ')}`);
    if (wanted === 'compile' && port) throw invalidArgs('port', port, 'applies to target "install" only');
    const verdict = this.pinnedStateOf(pin);
    if (verdict.state === 'refused') throw verdict.error;
    if (wanted === 'compile') return { compile: (await this.enqueue([this.newJob(name, JobType.JOB_TYPE_COMPILE, { receiverPin: pin })]))[0]! };
    const [compile, upload] = await this.enqueue(this.installChain(name, uploadPortArg(port || 'OTA'), pin));
    return { compile, upload };
  }

  /** Cancel a job submitted to `pin` (the normal cancel: a running compile is stopped on the receiver). */
  async cancelJob({ pinSha256, jobId }: pb.RemoteJobRequest): Promise<pb.JobResponse> {
    this.remoteJobArg(await pinArgOf(pinSha256), jobId);
    return this.cancel({ jobId });
  }

  /** The flash images of a completed job submitted to `pin`, as it left them here. */
  async downloadArtifacts({ pinSha256, jobId }: pb.RemoteJobRequest): Promise<pb.RemoteArtifactsResponse> {
    const job = this.remoteJobArg(await pinArgOf(pinSha256), jobId);
    if (job.status !== JobStatus.JOB_STATUS_COMPLETED) {
      throw new KilnError('failed_precondition', `job ${jobId} is ${statusName(job.status)}, not completed: it has no artifacts`, { job_id: jobId, status: statusName(job.status) });
    }
    const later = [...this.jobs.values()].find((j) => j.id !== job.id && j.startedAtMs > 0 && j.createdAtMs >= job.createdAtMs && (j.configuration === job.configuration || j.type === JobType.JOB_TYPE_RESET_BUILD_ENV) && j.lane === LaneName.LANE_NAME_COMPILE);
    if (later) {
      throw new KilnError('failed_precondition', `the artifacts of job ${jobId} were replaced by the later ${typeName(later.type)} job ${later.id}`, { job_id: jobId, later_job_id: later.id });
    }
    return { jobId, configuration: job.configuration, images: await remoteJobArtifacts(this.deps.configDir, job.configuration) };
  }

  /** Remove finished jobs (only those with `status`, when given) and their logs. */
  async clear({ status }: Partial<pb.ClearRequest> = {}): Promise<pb.ClearResponse> {
    const wanted = status || undefined;
    const removed = [...this.jobs.values()].filter((j) => isTerminal(j) && !this.isNeeded(j) && (wanted === undefined || j.status === wanted)).map((j) => j.id);
    for (const id of removed) this.jobs.delete(id);
    // Logs first, state after: on a full disk the deletes are what make room for the state write.
    await this.deleteLogs(removed);
    this.publish('cleared', encode(pb.JobsCleared, { jobIds: removed }));
    await this.store.save();
    return { removedJobIds: removed };
  }

  async getJobs(_request: pb.GetJobsRequest = {}): Promise<pb.JobsResponse> {
    return { jobs: [...this.jobs.values()] };
  }

  async getJob({ jobId }: pb.GetJobRequest): Promise<pb.JobResponse> {
    return { job: this.jobArg(jobId) };
  }

  /** A running job's view comes from memory; a finished job's from the log store (nothing kept in memory). */
  async getJobOutput({ jobId }: pb.GetJobOutputRequest): Promise<pb.GetJobOutputResponse> {
    const job = this.jobArg(jobId);
    const run = this.runs.get(job.id);
    if (run) return { jobId, lines: run.output.lines(), totalLines: run.output.totalAppended };
    const { lines, totalLines } = await readOutputTail(this.deps.logs, job.id);
    return { jobId, lines, totalLines };
  }

  async getBinaries({ configuration }: pb.GetBinariesRequest): Promise<pb.GetBinariesResponse> {
    return { configuration, artifacts: await listArtifacts(this.deps.configDir, await this.configurationArg(configuration)) };
  }

  async readArtifact({ configuration, file, offset, length }: pb.ReadArtifactRequest): Promise<pb.ReadArtifactResponse> {
    return readArtifact(this.deps.configDir, await this.configurationArg(configuration), file, offset, length);
  }

  async queueStatus(_request: pb.QueueStatusRequest = {}): Promise<pb.QueueStatus> {
    return {
      compile: this.lanes[LaneName.LANE_NAME_COMPILE].status(),
      upload: this.lanes[LaneName.LANE_NAME_UPLOAD].status(),
      held: [...this.jobs.values()].filter((j) => j.held && isActive(j)).length,
    };
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  /**
   * Load the history and resume. First, toolchain processes a killed predecessor left running are
   * stopped (SIGTERM, SIGKILL after `killGraceMs`), so none runs beside the jobs that start now. Then
   * queued jobs go back on their lanes, a job that was running runs again (with a notice in its log),
   * held uploads stay held, and dependents whose prerequisite is gone or did not complete are
   * cancelled (and logged).
   */
  async restore(): Promise<void> {
    const reaped = await this.reapLeftovers();
    const loaded = (await this.store.load()).sort((a, b) => a.createdAtMs - b.createdAtMs);
    for (const job of loaded) this.jobs.set(job.id, job);
    for (const job of loaded) {
      if (job.status === JobStatus.JOB_STATUS_RUNNING) {
        job.status = JobStatus.JOB_STATUS_QUEUED;
        job.progress = 0;
        this.notices.set(job.id, reaped.has(job.id) ? REAPED_NOTICE : RESTART_NOTICE);
      }
    }
    for (const job of loaded) {
      if (!isActive(job)) continue;
      if (job.dependsOn) {
        const prereq = this.jobs.get(job.dependsOn);
        if (!prereq || (isTerminal(prereq) && prereq.status !== JobStatus.JOB_STATUS_COMPLETED)) {
          this.deps.logger.warn({ jobId: job.id, dependsOn: job.dependsOn, prerequisite: prereq ? statusName(prereq.status) : 'missing' }, 'cancelling a restored job whose prerequisite did not complete');
          this.finish(job, { status: JobStatus.JOB_STATUS_CANCELLED, error: PREREQUISITE_FAILED });
          continue;
        }
        job.held = prereq.status !== JobStatus.JOB_STATUS_COMPLETED;
      }
      if (!job.held) this.lanes[laneOf(job)].enqueue(job.id);
    }
    await this.store.save();
    this.pump();
  }

  /** Stop every process; running jobs stay `running` on disk so the next start re-runs them. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.runs.values()].map((r) => r.abandon()));
    await this.store.save();
  }

  // ---- internals ------------------------------------------------------------------------------

  /** Stop the recorded process groups a previous process left running; returns their job ids. */
  private async reapLeftovers(): Promise<Set<string>> {
    const stopped = new Set<string>();
    for (const report of await this.groups.reap(this.deps.settings.killGraceMs)) {
      const where = { jobId: report.id, pgid: report.record?.pgid };
      if (report.outcome === 'killed') {
        stopped.add(report.id);
        this.deps.logger.warn(where, 'stopped a toolchain process left running by a previous kiln process');
      } else if (report.outcome === 'survived') {
        this.deps.logger.error(where, 'a toolchain process left running by a previous kiln process survived SIGKILL');
      } else if (report.outcome === 'error') {
        this.deps.logger.warn({ ...where, err: report.error }, 'a running-process record could not be reaped; ignored');
      }
    }
    return stopped;
  }

  private newJob(configuration: string, type: pb.JobType, extra: Partial<Job> = {}): Job {
    return {
      id: randomUUID(),
      configuration,
      type,
      status: JobStatus.JOB_STATUS_QUEUED,
      createdAtMs: this.deps.clock.now(),
      startedAtMs: 0,
      finishedAtMs: 0,
      error: '',
      port: '',
      dependsOn: '',
      source: pb.JobSource.JOB_SOURCE_LOCAL,
      progress: 0,
      newName: '',
      lane: laneFor(type),
      held: false,
      receiverPin: '',
      ...extra,
    };
  }

  /** The compile (pinned to a receiver when `receiverPin` is given) and its held local upload. */
  private installChain(configuration: string, port: string, receiverPin = ''): [Job, Job] {
    const compile = this.newJob(configuration, JobType.JOB_TYPE_COMPILE, { receiverPin });
    const upload = this.newJob(configuration, JobType.JOB_TYPE_UPLOAD, { port, dependsOn: compile.id, held: true });
    return [compile, upload];
  }

  /**
   * Place new jobs atomically: supersede what they replace, put them on their lanes (held
   * dependents off-lane), one persist, then announce all. `alsoChanged` are jobs already mutated
   * by the caller (reset's cancellations) that go out in the same commit.
   */
  private async enqueue(jobs: Job[], alsoChanged: Job[] = []): Promise<Job[]> {
    if (this.stopped) throw new KilnError('unavailable', 'the firmware service is stopping', {});
    const incoming = new Set(jobs.map((j) => j.id));
    const configurations = new Set(jobs.filter((j) => j.configuration).map((j) => j.configuration));
    const superseded = this.cancelWhere((j) => configurations.has(j.configuration) && !incoming.has(j.id), SUPERSEDED);
    for (const job of jobs) {
      this.jobs.set(job.id, job);
      if (!job.held) this.lanes[laneOf(job)].enqueue(job.id);
    }
    await this.commit([...alsoChanged, ...superseded, ...jobs], jobs);
    return jobs;
  }

  /**
   * Cancel matching active jobs: queued ones at once (and their held dependents, cascading),
   * running ones by terminating their process tree (their run ends cancelled). Returns the jobs
   * whose state changed now; the caller commits them.
   */
  private cancelWhere(match: (job: Job) => boolean, reason = 'cancelled'): Job[] {
    const changed: Job[] = [];
    for (const job of [...this.jobs.values()]) {
      if (!isActive(job) || !match(job)) continue;
      const run = this.runs.get(job.id);
      if (run) run.cancel(reason);
      else {
        this.finish(job, { status: JobStatus.JOB_STATUS_CANCELLED, error: reason });
        changed.push(job, ...this.settleDependents(job));
      }
    }
    return changed;
  }

  /** Release dependents of a completed job onto their lane, cancel those of a failed/cancelled one. */
  private settleDependents(prereq: Job): Job[] {
    const changed: Job[] = [];
    for (const job of this.jobs.values()) {
      if (job.dependsOn !== prereq.id || !isActive(job) || !job.held) continue;
      if (prereq.status === JobStatus.JOB_STATUS_COMPLETED) {
        job.held = false;
        this.lanes[laneOf(job)].enqueue(job.id);
      } else {
        this.finish(job, { status: JobStatus.JOB_STATUS_CANCELLED, error: PREREQUISITE_FAILED });
        changed.push(job, ...this.settleDependents(job));
      }
    }
    return changed;
  }

  private finish(job: Job, outcome: RunOutcome): void {
    job.status = outcome.status;
    job.error = outcome.error;
    if (outcome.exitCode !== undefined) job.exitCode = outcome.exitCode;
    job.finishedAtMs = this.deps.clock.now();
    job.held = false;
    this.lanes[laneOf(job)].remove(job.id);
    this.lostOnce.delete(job.id);
  }

  /**
   * Persist, then announce each changed job's current state, then schedule. When the state cannot be
   * written (a full disk), the `tentative` jobs (new ones a command is placing) are withdrawn and the
   * command fails with the write's error; changes to existing jobs are still announced (they happened,
   * memory is the truth), and the error is rethrown for the caller to report.
   */
  private async commit(changed: Job[], tentative: Job[] = []): Promise<void> {
    const pruned = this.pruneHistory();
    let failure: unknown;
    try {
      await this.store.save();
    } catch (err) {
      failure = err ?? new Error('saving the job state failed');
    }
    const withdrawn = new Set(failure === undefined ? [] : tentative);
    for (const job of withdrawn) {
      this.jobs.delete(job.id);
      this.lanes[laneOf(job)].remove(job.id);
    }
    for (const job of new Set(changed)) {
      if (withdrawn.has(job)) continue;
      const lifecycle = LIFECYCLE[job.status];
      if (lifecycle) this.publish(lifecycle.event, lifecycle.codec.encode({ job }).finish());
    }
    if (pruned.length > 0) {
      this.publish('cleared', encode(pb.JobsCleared, { jobIds: pruned }));
      void this.deleteLogs(pruned);
    }
    this.pump();
    if (failure !== undefined) throw failure;
  }

  /** Start whatever may start on each lane. */
  private pump(): void {
    if (this.stopped) return;
    const compile = this.lanes[LaneName.LANE_NAME_COMPILE];
    this.startPinned(compile);
    // The compile lane is FIFO: a clean/reset waiting for an upload holds the lane (it must run before later builds).
    // Jobs sent to one receiver are not in this order: they wait for their receiver (startPinned).
    while (compile.free > 0) {
      const id = compile.queue.find((q) => !this.jobs.get(q)!.receiverPin && !this.forgetting.has(this.jobs.get(q)!.configuration));
      if (id === undefined) break;
      const job = this.jobs.get(id)!;
      if (isMaintenance(job) && this.gate.maintenanceBlockedBy(job)) break;
      compile.queue.splice(compile.queue.indexOf(id), 1);
      this.start(job, compile);
    }
    const upload = this.lanes[LaneName.LANE_NAME_UPLOAD];
    for (const id of [...upload.queue]) {
      if (upload.free <= 0) break;
      const job = this.jobs.get(id)!;
      if (this.gate.uploadBlockedBy(job) || this.forgetting.has(job.configuration)) continue;
      upload.queue.splice(upload.queue.indexOf(id), 1);
      this.start(job, upload);
    }
  }

  /**
   * Jobs sent to one receiver start when it has no compile of ours (one at a time there), not when
   * the lane has a free slot; a clean/reset queued ahead of them still runs first. One whose receiver
   * cannot take it (gone, disconnected, version refused) fails, naming the receiver.
   */
  private startPinned(compile: Lane): void {
    const busy = new Set([...compile.pinned].map((id) => this.jobs.get(id)?.receiverPin));
    const failed: Job[] = [];
    for (const id of [...compile.queue]) {
      const job = this.jobs.get(id)!;
      if (isMaintenance(job)) break;
      if (!job.receiverPin || this.forgetting.has(job.configuration)) continue;
      const verdict = this.pinnedStateOf(job.receiverPin);
      if (verdict.state === 'refused') {
        this.finish(job, { status: JobStatus.JOB_STATUS_FAILED, error: verdict.error.message });
        failed.push(job, ...this.settleDependents(job));
        continue;
      }
      if (verdict.state === 'wait' || busy.has(job.receiverPin)) continue;
      busy.add(job.receiverPin);
      compile.queue.splice(compile.queue.indexOf(id), 1);
      compile.pinned.add(job.id);
      this.start(job, compile);
    }
    if (failed.length > 0) void this.commit(failed).catch((err: unknown) => this.deps.logger.error({ err }, 'could not record jobs whose receiver is unavailable'));
  }

  private pinnedStateOf(pin: string): PinnedState {
    const executor = this.executors[LaneName.LANE_NAME_COMPILE];
    if (executor.pinnedState) return executor.pinnedState(pin);
    return { state: 'refused', error: new KilnError('unavailable', 'this host does not send builds to receivers', { pin_sha256: pin }) };
  }

  /**
   * The process starts at once; `started` is announced (before any of its output or progress is)
   * once its `running` state is persisted and the executor has it (a local process: its process
   * group recorded for reaping after a crash), but the spawn does not wait for the disk.
   */
  private start(job: Job, lane: Lane): void {
    lane.running.add(job.id);
    job.status = JobStatus.JOB_STATUS_RUNNING;
    job.startedAtMs = this.deps.clock.now();
    job.progress = 0;
    const notice = this.notices.get(job.id);
    this.notices.delete(job.id);
    let isAnnounced = false;
    const executor = this.executors[laneOf(job)];
    const run = new JobRun(job, { ...this.deps, executor, outputBatchMs: this.deps.settings.outputBatchMs }, notice);
    // A job whose `running` state cannot be written (full disk) still runs and is announced: memory is
    // the truth; if it then fails, its error names the write that failed.
    let stateFailure: unknown;
    const saved = this.store.save().catch((err: unknown) => void (stateFailure = err));
    const announced = Promise.all([saved, run.placed]).then(() => {
      isAnnounced = true;
      this.publish('started', encode(pb.JobStarted, { job }));
    });
    this.runs.set(job.id, run);
    const settled = (async () => {
      const outcome = await run.run(announced, (progress) => {
        job.progress = progress;
        if (isAnnounced) publishProgress(this.deps.bus, job);
      });
      await announced;
      if (this.stopped) return; // abandoned: stays `running` on disk and re-runs on restore
      this.runs.delete(job.id);
      run.output.release();
      if (outcome.lost && !this.lostOnce.has(job.id)) return this.requeueLost(job, lane, outcome.error);
      if (outcome.status === JobStatus.JOB_STATUS_COMPLETED) job.progress = 100;
      this.finish(job, isNoSpaceError(stateFailure) ? blameStorage(outcome, (stateFailure as Error).message) : outcome);
      await this.commit([job, ...this.settleDependents(job)]);
    })()
      .catch((err: unknown) => this.deps.logger.error({ err, jobId: job.id }, 'job bookkeeping failed'))
      .finally(() => {
        if (this.runsSettled.get(job.id) === settled) this.runsSettled.delete(job.id);
      });
    this.runsSettled.set(job.id, settled);
  }

  /**
   * A job its executor lost (worker died or stopped) runs again once, first on its lane (it was
   * already running); lost a second time it fails with the loss as its error.
   */
  private async requeueLost(job: Job, lane: Lane, reason: string): Promise<void> {
    this.lostOnce.add(job.id);
    this.deps.logger.warn({ jobId: job.id, reason }, 'executor lost a running job; running it again');
    lane.running.delete(job.id);
    job.status = JobStatus.JOB_STATUS_QUEUED;
    job.progress = 0;
    lane.queue.unshift(job.id);
    this.notices.set(job.id, LOST_NOTICE);
    await this.commit([job]);
  }

  /**
   * Bounded history: active jobs and prerequisites of active jobs always stay; of finished primary
   * jobs the latest per (configuration, type) stays; of finished clean/reset jobs the latest few.
   */
  private pruneHistory(): string[] {
    const newestFirst = [...this.jobs.values()].filter((j) => isTerminal(j) && !this.isNeeded(j)).sort((a, b) => b.createdAtMs - a.createdAtMs);
    const seen = new Set<string>();
    let maintenance = 0;
    const pruned: string[] = [];
    for (const job of newestFirst) {
      const keep = isMaintenance(job) ? maintenance++ < this.deps.settings.keepMaintenanceJobs : !seen.has(`${job.configuration}\0${job.type}`);
      seen.add(`${job.configuration}\0${job.type}`);
      if (!keep) {
        this.jobs.delete(job.id);
        pruned.push(job.id);
      }
    }
    return pruned;
  }

  private isNeeded(job: Job): boolean {
    for (const other of this.jobs.values()) if (other.dependsOn === job.id && isActive(other)) return true;
    return false;
  }

  private async deleteLogs(ids: string[]): Promise<void> {
    for (const id of ids) {
      try {
        await this.deps.logs.delete(id);
      } catch (err) {
        this.deps.logger.warn({ err, jobId: id }, 'could not delete a pruned job log');
      }
    }
  }

  private publish(event: FirmwareEventName, data: Uint8Array): void {
    this.deps.bus.publish(firmwareSubjects.event(event), data);
  }

  private jobArg(jobId: string): Job {
    assertSafeId('job_id', jobId);
    const job = this.jobs.get(jobId);
    if (!job) throw notFound('job_id', jobId);
    return job;
  }

  /** A job submitted to the receiver behind `pin`; any other job is not found under that pin. */
  private remoteJobArg(pin: string, jobId: string): Job {
    const job = this.jobArg(jobId);
    if (job.receiverPin !== pin) throw new KilnError('not_found', `job ${jobId} was not submitted to the receiver with pin ${pin}`, { job_id: jobId, pin_sha256: pin });
    return job;
  }

  /** Validated name of a configuration whose file is (really) inside the config dir. */
  private async configurationArg(value: unknown, field = 'configuration'): Promise<string> {
    await resolveConfigurationFile(this.deps.configDir, value, field);
    return value as string;
  }
}

const SUPERSEDED = 'superseded by a newer job for this configuration';
const FORGOTTEN = 'cancelled: the device was deleted';
const RESTART_NOTICE = '... [kiln restarted while this job was running; running it again]';
const REAPED_NOTICE = '... [kiln restarted while this job was running; its leftover process was stopped; running it again]';
const LOST_NOTICE = '... [running the job again (once) after its executor lost it]';

/** esphome's device-name rule (names become host names). */
const DEVICE_NAME = /^[a-z0-9-]{1,31}$/;


function laneOf(job: Job): pb.LaneName.LANE_NAME_COMPILE | pb.LaneName.LANE_NAME_UPLOAD {
  return job.lane === LaneName.LANE_NAME_UPLOAD ? LaneName.LANE_NAME_UPLOAD : LaneName.LANE_NAME_COMPILE;
}

/** A receiver pin, normalised by the pairing code (loaded with these commands only: it pulls in the TLS stack). */
async function pinArgOf(value: unknown): Promise<string> {
  if (typeof value !== 'string') throw invalidArgs('pin_sha256', value, 'must be a SHA-256 fingerprint (64 hex digits)');
  const { parsePin } = await import('@kiln/remote-identity');
  return parsePin('pin_sha256', value);
}

/** Whether anything (a file, a directory or a link, even a dangling one) is at `path`. */
async function entryExists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
