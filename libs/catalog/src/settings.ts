import { intSetting, v } from '@kiln/config';

/** The `catalog` config section. */
export const catalogSettingsSchema = v.strictObject({
  /**
   * Catalog directory to serve. Empty: the imported catalog under `<data_dir>/catalog` when there is
   * one, else the small catalog shipped with Kiln (`definitions/catalog`).
   */
  dir: v.optional(v.string('must be a path'), ''),
  /** Bodies kept in memory at most (count bound of the LRU). */
  cacheEntries: intSetting(128, { min: 1, max: 100_000 }),
  /** Bytes of body JSON kept in memory at most (size bound of the LRU). */
  cacheBytes: intSetting(8 * 1024 * 1024, { min: 64 * 1024 }),
});

export type CatalogSettings = v.InferOutput<typeof catalogSettingsSchema>;
