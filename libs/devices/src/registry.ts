import type { FSWatcher } from 'node:fs';
import { lstat, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError, assertConfigContentSize, assertConfigurationName, configurationOfStorageFile, disposable, invalidArgs, notFound, resolveConfigurationFile, storageDir, writeFileAtomic } from '@kiln/core';
import { planCreate, type CreateArgs } from './create.js';
import { isMissing, readDeviceInfo, type DeviceEvent, type DeviceInfo } from './device-info.js';
import { isDeviceFileName } from './device-files.js';
import { watchDirectory } from './watcher.js';
import { asRecord, asString, parseYaml } from './yaml.js';

export interface DeviceRegistryOptions {
  configDir: string;
  /**
   * Remove what builds of a deleted device left (StorageJSON, build dir): the firmware service's
   * `forget_build`, which holds the lanes' gates so it never races a compile of the configuration.
   */
  forgetBuild(configuration: string, deviceName: string): Promise<void>;
  /** Quiet period before a burst of on-disk changes is rescanned. */
  debounceMs?: number;
}

/**
 * The set of device YAML files in the config dir, kept current from its own writes and from
 * fs.watch, with add/update/remove events. All state changes run one at a time on a queue so a
 * watcher rescan never interleaves with a write and each change is reported once.
 */
export class DeviceRegistry {
  readonly #configDir: string;
  readonly #debounceMs: number;
  readonly #forgetBuild: DeviceRegistryOptions['forgetBuild'];
  readonly #devices = new Map<string, DeviceInfo>();
  readonly #listeners = new Set<(e: DeviceEvent) => void>();
  #queue: Promise<void> = Promise.resolve();
  #configWatcher: FSWatcher | undefined;
  #storageWatcher: FSWatcher | undefined;
  #pending = new Set<string>();
  #pendingFull = false;
  #timer: NodeJS.Timeout | undefined;
  #running = false;

  constructor(options: DeviceRegistryOptions) {
    this.#configDir = options.configDir;
    this.#debounceMs = options.debounceMs ?? 100;
    this.#forgetBuild = options.forgetBuild;
  }

  get listenerCount(): number {
    return this.#listeners.size;
  }

  /** Watch first, then scan: a change racing the scan is rescanned rather than missed. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#attachWatchers();
    await this.#serial(() => this.#rescanAll());
  }

  stop(): void {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#configWatcher?.close();
    this.#storageWatcher?.close();
    this.#configWatcher = this.#storageWatcher = undefined;
  }

  list(): DeviceInfo[] {
    return [...this.#devices.values()].sort((a, b) => (a.configuration < b.configuration ? -1 : a.configuration > b.configuration ? 1 : 0));
  }

  get(configuration: string): DeviceInfo {
    assertConfigurationName('configuration', configuration);
    const device = this.#devices.get(configuration);
    if (!device) throw notFound('configuration', configuration);
    return device;
  }

  async getConfig(configuration: string): Promise<string> {
    const path = await this.#existingDevicePath(configuration);
    return readFile(path, 'utf8');
  }

  async updateConfig(configuration: string, content: string): Promise<DeviceInfo> {
    assertConfigurationName('configuration', configuration);
    await validateContent(content);
    return this.#serial(async () => {
      const path = await this.#existingDevicePath(configuration);
      await writeFileAtomic(path, content);
      return this.#refreshed(configuration);
    });
  }

  async create(args: CreateArgs): Promise<DeviceInfo> {
    const plan = planCreate(args);
    return this.#serial(async () => {
      const path = join(this.#configDir, plan.configuration);
      if (!plan.overwrite && (await exists(path))) {
        throw new KilnError('already_exists', `configuration already exists: ${JSON.stringify(plan.configuration)}`, { configuration: plan.configuration });
      }
      await writeFileAtomic(path, plan.content);
      return this.#refreshed(plan.configuration);
    });
  }

  async delete(configuration: string): Promise<void> {
    assertConfigurationName('configuration', configuration);
    const name = await this.#serial(async () => {
      const path = await this.#existingDevicePath(configuration);
      const deviceName = await this.#deviceName(configuration, path);
      // The YAML first: from then on no new job of the configuration can be created.
      await rm(path, { force: true });
      await this.#refresh(configuration);
      return deviceName;
    });
    // Outside the queue: the firmware service may wait seconds for the device's jobs to end, and
    // other writes and rescans need not wait for that.
    await this.#forgetBuild(configuration, name);
  }

  onEvent(listener: (e: DeviceEvent) => void): Disposable {
    this.#listeners.add(listener);
    return disposable(() => this.#listeners.delete(listener));
  }

  /**
   * Validated path of an existing device file: invalid_args before any file is touched, permission_denied
   * for a link leading out of the config dir (the one resolver every command uses), else not_found.
   * Devices are regular files only: a link inside the config dir is built by firmware/* but not edited
   * here (an atomic write would replace the link with a copy).
   */
  async #existingDevicePath(configuration: string): Promise<string> {
    assertConfigurationName('configuration', configuration);
    if (!isDeviceFileName(configuration)) throw notFound('configuration', configuration);
    await resolveConfigurationFile(this.#configDir, configuration);
    const path = join(this.#configDir, configuration);
    try {
      if ((await lstat(path)).isFile()) return path;
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
    throw notFound('configuration', configuration);
  }

  async #deviceName(configuration: string, path: string): Promise<string> {
    const parsed = await parseYaml(await readFile(path, 'utf8'));
    const fromYaml = parsed.ok ? asString(asRecord(asRecord(parsed.value)?.['esphome'])?.['name']) : '';
    return fromYaml || this.#devices.get(configuration)?.name || '';
  }

  #serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(op);
    this.#queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  async #refreshed(configuration: string): Promise<DeviceInfo> {
    await this.#refresh(configuration);
    const device = this.#devices.get(configuration);
    if (!device) throw notFound('configuration', configuration);
    return device;
  }

  /** Re-read one configuration and emit only if what a client would see changed. */
  async #refresh(configuration: string): Promise<void> {
    const next = isDeviceFileName(configuration) ? await readDeviceInfo(this.#configDir, configuration) : undefined;
    const prev = this.#devices.get(configuration);
    if (!next) {
      if (prev && this.#devices.delete(configuration)) this.#emit({ type: 'device_removed', configuration });
      return;
    }
    this.#devices.set(configuration, next);
    if (!prev) this.#emit({ type: 'device_added', device: next });
    else if (JSON.stringify(prev) !== JSON.stringify(next)) this.#emit({ type: 'device_updated', device: next });
  }

  async #rescanAll(): Promise<void> {
    const names = new Set(this.#devices.keys());
    for (const entry of await readdir(this.#configDir, { withFileTypes: true })) {
      if (entry.isFile() && isDeviceFileName(entry.name)) names.add(entry.name);
    }
    for (const name of [...names].sort()) await this.#refresh(name);
  }

  #emit(event: DeviceEvent): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch (err) {
        // A faulty listener must not skip the others or leave the registry half-updated.
        process.emitWarning(`device event listener failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  #attachWatchers(): void {
    this.#configWatcher ??= watchDirectory(
      this.#configDir,
      (file) => this.#schedule(file),
      () => (this.#configWatcher = undefined),
    );
    // .esphome/storage appears only after the first build; retried on every flush until it exists.
    this.#storageWatcher ??= watchDirectory(
      storageDir(this.#configDir),
      (file) => this.#schedule(file === null ? null : (configurationOfStorageFile(file) ?? '')),
      () => (this.#storageWatcher = undefined),
    );
  }

  #schedule(configuration: string | null): void {
    if (configuration === null) this.#pendingFull = true;
    else if (isDeviceFileName(configuration)) this.#pending.add(configuration);
    else if (configuration === '.esphome') this.#pendingFull = true;
    else return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#flush(), this.#debounceMs);
  }

  #flush(): void {
    this.#timer = undefined;
    if (!this.#running) return;
    const hadStorageWatcher = this.#storageWatcher !== undefined;
    this.#attachWatchers();
    const full = this.#pendingFull || (!hadStorageWatcher && this.#storageWatcher !== undefined);
    const names = [...this.#pending].sort();
    this.#pending.clear();
    this.#pendingFull = false;
    void this.#serial(async () => {
      if (!this.#running) return;
      if (full) await this.#rescanAll();
      else for (const name of names) await this.#refresh(name);
    }).catch((err: unknown) => {
      // A watcher-driven rescan has no caller to report to; the next change retries.
      process.emitWarning(`device rescan failed: ${err instanceof Error ? err.message : String(err)}`);
    });
  }
}

async function validateContent(content: unknown): Promise<void> {
  if (typeof content !== 'string') throw invalidArgs('content', content, 'must be a string');
  assertConfigContentSize(content);
  const parsed = await parseYaml(content);
  if (!parsed.ok) throw invalidArgs('content', content, `is not valid YAML: ${parsed.error}`);
  const name = asRecord(asRecord(parsed.value)?.['esphome'])?.['name'];
  if (typeof name !== 'string' || name.trim() === '') throw invalidArgs('content', content, 'must set esphome.name');
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if (isMissing(err)) return false;
    throw err;
  }
}
