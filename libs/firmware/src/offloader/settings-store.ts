import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { v } from '@kiln/config';
import { KilnError, readTextIfExists, writeFileAtomic } from '@kiln/core';

/** How strictly receivers are filtered by Kiln version: any, same release (major.minor), or the exact version. */
export const VERSION_MATCH_POLICIES = ['any', 'release', 'exact'] as const;
export type VersionMatchPolicy = (typeof VERSION_MATCH_POLICIES)[number];

/** The offloader's master switches (upstream names), as stored and as the API shows them. */
export interface OffloaderSettings {
  /** false: every compile runs locally, whatever is paired. */
  remote_builds_enabled: boolean;
  version_match_policy: VersionMatchPolicy;
  /** true: this host compiles too, in parallel with the receivers; false: only when no receiver is eligible. */
  include_local_in_pool: boolean;
}

export const DEFAULT_OFFLOADER_SETTINGS: OffloaderSettings = { remote_builds_enabled: true, version_match_policy: 'any', include_local_in_pool: false };

const storedSchema = v.object({
  remote_builds_enabled: v.optional(v.boolean(), DEFAULT_OFFLOADER_SETTINGS.remote_builds_enabled),
  version_match_policy: v.optional(v.picklist(VERSION_MATCH_POLICIES), DEFAULT_OFFLOADER_SETTINGS.version_match_policy),
  include_local_in_pool: v.optional(v.boolean(), DEFAULT_OFFLOADER_SETTINGS.include_local_in_pool),
});

/**
 * `<data_dir>/offloader/settings.json`, written atomically; memory follows the file (a change is
 * persisted before anyone is told). Changes are serialised.
 */
export class OffloaderSettingsStore {
  readonly file: string;
  private current: OffloaderSettings = { ...DEFAULT_OFFLOADER_SETTINGS };
  private tail: Promise<unknown> = Promise.resolve();

  constructor(readonly dir: string) {
    this.file = join(dir, 'settings.json');
  }

  get settings(): OffloaderSettings {
    return this.current;
  }

  async load(): Promise<OffloaderSettings> {
    const text = await readTextIfExists(this.file);
    if (text === undefined) return this.current;
    const parsed = v.safeParse(storedSchema, safeJson(text));
    if (!parsed.success) {
      throw new KilnError('internal_error', `offloader settings ${this.file} are invalid (${parsed.issues[0].message})`, { file: this.file });
    }
    this.current = parsed.output;
    return this.current;
  }

  /** Apply a partial change (already validated), persist it, then make it current. */
  update(change: Partial<OffloaderSettings>): Promise<OffloaderSettings> {
    const run = this.tail.then(async () => {
      const next = { ...this.current, ...change };
      await writeFileAtomic(this.file, `${JSON.stringify(next, null, 2)}\n`, 0o600);
      this.current = next;
      return next;
    });
    this.tail = run.catch(() => undefined);
    return run;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Whether `kiln pair` (or request_pair) recorded any receiver; read without loading the gRPC stack. */
export async function hasPairings(dir: string): Promise<boolean> {
  try {
    const rows = JSON.parse(await readFile(join(dir, 'receivers.json'), 'utf8')) as unknown;
    return Array.isArray(rows) && rows.length > 0;
  } catch {
    return false;
  }
}
