import { randomUUID } from 'node:crypto';
import { mkdir, rm, utimes } from 'node:fs/promises';
import { basename } from 'node:path';
import { remotePb as pb } from '@kiln/contracts';
import { assertConfigurationName, builtFirmwareDir, KilnError, resolveBuildPaths, type BuildPaths, type Clock } from '@kiln/core';
import type { Logger } from '@kiln/logging';
import { parseProgress, type RunningGroups, type Toolchain, type ToolchainProcess } from '@kiln/toolchain';
import { walkBundle, type BundleLimits } from '@kiln/remote-identity';
import type { BundleStore } from './bundle-store.js';

/** Output lines kept per build for followers that join late; older ones are counted, not kept. */
const KEPT_OUTPUT_LINES = 4000;

export type BuildEvent = NonNullable<pb.FollowResponse['event']>;

/** One remote build: owned by the offloader that started it; nobody else can see or touch it. */
export class Build {
  status = pb.BuildStatus.BUILD_STATUS_QUEUED;
  exitCode = 0;
  error = '';
  progress = 0;
  finishedAtMs = 0;
  /** Set when a compile completes: the device name its StorageJSON records. */
  deviceName = '';
  /** Number of the first kept line. */
  firstSeq = 0;
  readonly lines: string[] = [];
  readonly listeners = new Set<(event: BuildEvent) => void>();
  process: ToolchainProcess | undefined;
  cancelRequested = false;

  constructor(
    readonly id: string,
    readonly owner: string,
    readonly configuration: string,
    readonly action: pb.BuildAction,
    readonly bundleSha256: string,
    readonly paths: BuildPaths,
    readonly createdAtMs: number,
  ) {}

  get active(): boolean {
    return this.status === pb.BuildStatus.BUILD_STATUS_QUEUED || this.status === pb.BuildStatus.BUILD_STATUS_RUNNING;
  }

  state(): pb.BuildState {
    return {
      buildId: this.id,
      configuration: this.configuration,
      action: this.action,
      status: this.status,
      exitCode: this.exitCode,
      error: this.error,
      progress: this.progress,
      createdAtMs: this.createdAtMs,
      finishedAtMs: this.finishedAtMs,
      deviceName: this.deviceName,
    };
  }

  emit(event: BuildEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  append(lines: string[]): void {
    const firstSeq = this.firstSeq + this.lines.length;
    this.lines.push(...lines);
    const excess = this.lines.length - KEPT_OUTPUT_LINES;
    if (excess > 0) {
      this.lines.splice(0, excess);
      this.firstSeq += excess;
    }
    this.emit({ $case: 'output', value: { firstSeq, lines } });
  }
}

export interface BuildsDeps {
  configDir: string;
  toolchain: Toolchain;
  bundles: BundleStore;
  limits: BundleLimits;
  slots: number;
  keepFinished: number;
  /** Where each running compile's process group is recorded (reaped at the next start after a crash). */
  groups: RunningGroups;
  clock: Clock;
  logger: Logger;
  /** The compile lane changed (a build queued, started or finished). */
  onLaneChange(): void;
}

/**
 * The receiver's compile lane: builds for offloaders, FIFO over `slots`, each in its owner's isolated
 * build dir with ESPHOME_DATA_DIR pinned there. Only compile and clean run here; an upload is refused.
 */
export class Builds {
  private readonly builds = new Map<string, Build>();
  private readonly queue: Build[] = [];
  private readonly running = new Set<Build>();

  constructor(private readonly deps: BuildsDeps) {}

  laneStatus(): { idle: boolean; running: number; depth: number; slots: number } {
    return { idle: this.running.size < this.deps.slots && this.queue.length === 0, running: this.running.size, depth: this.queue.length, slots: this.deps.slots };
  }

  /** Build dirs of queued and running builds: the sweep never touches these. */
  inFlightDirs(): Set<string> {
    return new Set([...this.builds.values()].filter((b) => b.active).map((b) => b.paths.dataDir));
  }

  /** Bundle files of queued and running builds. */
  inFlightBundles(): Set<string> {
    return new Set([...this.builds.values()].filter((b) => b.active).map((b) => this.deps.bundles.path(b.owner, b.bundleSha256)));
  }

  async start(owner: string, request: pb.StartBuildRequest): Promise<Build> {
    const configuration = assertConfigurationName('configuration', request.configuration);
    if (request.action === pb.BuildAction.BUILD_ACTION_UPLOAD) {
      throw new KilnError('failed_precondition', 'a receiver only compiles and cleans: upload on the offloader (its upload lane flashes the downloaded artifacts)', {
        field: 'action',
        value: 'upload',
      });
    }
    if (request.action !== pb.BuildAction.BUILD_ACTION_COMPILE && request.action !== pb.BuildAction.BUILD_ACTION_CLEAN) {
      throw new KilnError('invalid_args', `action: must be compile or clean, got ${request.action}`, { field: 'action', value: request.action });
    }
    if (!(await this.deps.bundles.has(owner, request.bundleSha256))) {
      throw new KilnError('not_found', `bundle ${request.bundleSha256} is not on this receiver: submit it first`, { bundle_sha256: request.bundleSha256 });
    }
    const files = await walkBundle(this.deps.bundles.path(owner, request.bundleSha256), this.deps.limits);
    if (!files.includes(configuration)) {
      throw new KilnError('invalid_args', `configuration: ${configuration} is not at the top of the bundle`, { field: 'configuration', value: configuration });
    }
    const paths = resolveBuildPaths(this.deps.configDir, configuration, { dashboardId: owner });
    // One build per (offloader, device) at a time: they would share a build dir. The newer one wins.
    for (const other of this.builds.values()) {
      if (other.active && other.owner === owner && other.configuration === configuration) await this.cancel(owner, other.id);
    }
    const build = new Build(randomUUID(), owner, configuration, request.action, request.bundleSha256, paths, this.deps.clock.now());
    this.builds.set(build.id, build);
    this.queue.push(build);
    this.prune();
    this.deps.onLaneChange();
    this.pump();
    return build;
  }

  /** A build of `owner`'s; another offloader's build is "not found" (ids do not leak across peers). */
  get(owner: string, buildId: string): Build {
    const build = this.builds.get(buildId);
    if (!build || build.owner !== owner) throw new KilnError('not_found', `no build ${JSON.stringify(buildId)}`, { build_id: buildId });
    return build;
  }

  async cancel(owner: string, buildId: string): Promise<Build> {
    const build = this.get(owner, buildId);
    if (!build.active) return build;
    build.cancelRequested = true;
    const queued = this.queue.indexOf(build);
    if (queued >= 0) {
      this.queue.splice(queued, 1);
      this.finish(build, pb.BuildStatus.BUILD_STATUS_CANCELLED, 'cancelled');
      this.deps.onLaneChange();
      return build;
    }
    // Running: kill the process tree; the run loop records the cancellation when it has exited.
    await build.process?.terminate();
    return build;
  }

  /** Stop: cancel everything, wait for the process trees to be gone. */
  async stop(): Promise<void> {
    for (const build of [...this.queue]) await this.cancel(build.owner, build.id);
    await Promise.all([...this.running].map((b) => b.process?.terminate()));
  }

  private pump(): void {
    while (this.running.size < this.deps.slots && this.queue.length > 0) {
      const build = this.queue.shift()!;
      this.running.add(build);
      void this.run(build)
        .catch((err: unknown) => {
          this.deps.logger.error({ err, build: build.id }, 'remote build crashed');
          if (build.active) this.finish(build, pb.BuildStatus.BUILD_STATUS_FAILED, (err as Error).message);
        })
        .finally(() => {
          this.running.delete(build);
          this.deps.onLaneChange();
          this.pump();
        });
    }
  }

  private async run(build: Build): Promise<void> {
    build.status = pb.BuildStatus.BUILD_STATUS_RUNNING;
    build.emit({ $case: 'state', value: build.state() });
    this.deps.onLaneChange();
    const { paths } = build;
    await mkdir(paths.dataDir, { recursive: true });
    await touch(paths.dataDir, this.deps.clock);
    // Fresh sources every time (a file the offloader deleted must not linger); build/ stays warm.
    await rm(paths.sourceDir, { recursive: true, force: true });
    try {
      await walkBundle(this.deps.bundles.path(build.owner, build.bundleSha256), this.deps.limits, paths.sourceDir);
    } catch (err) {
      this.finish(build, pb.BuildStatus.BUILD_STATUS_FAILED, (err as Error).message);
      return;
    }
    if (build.cancelRequested) {
      this.finish(build, pb.BuildStatus.BUILD_STATUS_CANCELLED, 'cancelled');
      return;
    }
    const kind = build.action === pb.BuildAction.BUILD_ACTION_CLEAN ? 'clean' : 'compile';
    const proc = await this.deps.toolchain.run({ kind }, paths.yaml, { dataDir: paths.dataDir, cwd: paths.sourceDir });
    build.process = proc;
    // A cancel that came while the toolchain was starting found no process to terminate.
    if (build.cancelRequested) void proc.terminate();
    // Best effort: without the record only a crash of this process would leave the compile orphaned.
    if (proc.pid !== undefined) await this.deps.groups.add(build.id, proc.pid).catch((err: unknown) => this.deps.logger.warn({ err }, 'running-build record not written'));
    let batch: string[] = [];
    let flush: NodeJS.Timeout | undefined;
    const ship = (): void => {
      if (flush) clearTimeout(flush);
      flush = undefined;
      if (batch.length > 0) build.append(batch);
      batch = [];
    };
    for await (const line of proc.lines) {
      batch.push(line);
      const progress = kind === 'compile' ? parseProgress(line, 'compile') : undefined;
      if (progress !== undefined && progress > build.progress) build.progress = progress;
      if (batch.length >= 500) ship();
      else flush ??= setTimeout(ship, 50);
    }
    ship();
    const exit = await proc.exited;
    build.process = undefined;
    await this.deps.groups.remove(build.id).catch(() => undefined);
    await touch(paths.dataDir, this.deps.clock);
    if (build.cancelRequested) this.finish(build, pb.BuildStatus.BUILD_STATUS_CANCELLED, 'cancelled');
    else if (exit.error) this.finish(build, pb.BuildStatus.BUILD_STATUS_FAILED, exit.error.message, exit.exitCode ?? -1);
    else if (exit.exitCode === 0) {
      if (kind === 'compile') build.deviceName = basename((await builtFirmwareDir(paths)) ?? '');
      this.finish(build, pb.BuildStatus.BUILD_STATUS_COMPLETED, '', 0);
    }
    else this.finish(build, pb.BuildStatus.BUILD_STATUS_FAILED, `esphome ${kind} exited with ${exit.exitCode ?? exit.signal}`, exit.exitCode ?? -1);
  }

  private finish(build: Build, status: pb.BuildStatus, error: string, exitCode = 0): void {
    build.status = status;
    build.error = error;
    build.exitCode = exitCode;
    if (status === pb.BuildStatus.BUILD_STATUS_COMPLETED) build.progress = 100;
    build.finishedAtMs = this.deps.clock.now();
    build.emit({ $case: 'state', value: build.state() });
    build.listeners.clear();
  }

  private prune(): void {
    const finished = [...this.builds.values()].filter((b) => !b.active);
    for (const build of finished.slice(0, Math.max(0, finished.length - this.deps.keepFinished))) this.builds.delete(build.id);
  }
}

async function touch(dir: string, clock: Clock): Promise<void> {
  const now = new Date(clock.now());
  await utimes(dir, now, now).catch(() => undefined);
}
