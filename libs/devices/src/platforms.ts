/** Target platforms ESPHome accepts as a top-level component, lower-case as in YAML. */
export const KNOWN_PLATFORMS = ['esp32', 'esp8266', 'rp2040', 'bk72xx', 'rtl87xx', 'ln882x', 'host'] as const;

export type Platform = (typeof KNOWN_PLATFORMS)[number];

export function isPlatform(value: unknown): value is Platform {
  return typeof value === 'string' && (KNOWN_PLATFORMS as readonly string[]).includes(value);
}

/**
 * Board used by `create` when only a platform is given: a common generic board per platform,
 * so a new device validates without the user knowing board ids. `host` has no board option.
 */
export const DEFAULT_BOARDS: Readonly<Record<Platform, string>> = {
  esp32: 'esp32dev',
  esp8266: 'esp01_1m',
  rp2040: 'rpipicow',
  bk72xx: 'generic-bk7231n-qfn32-tuya',
  rtl87xx: 'generic-rtl8710bn-2mb-788k',
  ln882x: 'generic-ln882hki',
  host: '',
};

/** StorageJSON writes `esp_platform` upper-case ("ESP32"); anything unknown maps to ''. */
export function normalisePlatform(value: unknown): Platform | '' {
  const lower = typeof value === 'string' ? value.trim().toLowerCase() : '';
  return isPlatform(lower) ? lower : '';
}
