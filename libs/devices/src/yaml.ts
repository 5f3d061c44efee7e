import { yamlLimitExceeded } from '@kiln/core';
import type { CollectionTag, ScalarTag } from 'yaml';

/**
 * ESPHome's own tags. Declaring them keeps their values (a `!secret` key name, an `!include`
 * path or map, a lambda body) as plain data instead of a resolve warning; any other custom tag
 * still parses (yaml downgrades an unknown tag to a warning), so a device never fails on a tag.
 */
const ESPHOME_TAGS = ['!secret', '!include', '!lambda', '!extend', '!remove', '!include_dir_list', '!include_dir_named', '!include_dir_merge_list', '!include_dir_merge_named', '!env_var', '!force'];

const CUSTOM_TAGS: (ScalarTag | CollectionTag)[] = ESPHOME_TAGS.flatMap((tag) => [
  { tag, resolve: (value: string) => value } satisfies ScalarTag,
  { tag, collection: 'map', resolve: (value) => value } satisfies CollectionTag,
  { tag, collection: 'seq', resolve: (value) => value } satisfies CollectionTag,
]);

export type YamlParse = { ok: true; value: unknown } | { ok: false; error: string };

/**
 * The YAML parser (~75 modules, a few MB of an idle process) is imported on the first parse: a
 * gateway with an empty config dir never reads YAML until someone edits or creates a device.
 */
let parser: Promise<typeof import('yaml')> | undefined;

/**
 * Parse one YAML document; errors are reported as text, warnings (unknown tags) ignored. Every YAML
 * the gateway reads (a config sent with update_config, the files of the config dir) comes through
 * here, so the size and nesting bounds (`YAML_LIMITS`) are checked first: over them, it is an error
 * without the parser ever seeing the text.
 */
export async function parseYaml(text: string): Promise<YamlParse> {
  const refused = yamlLimitExceeded(text);
  if (refused) return { ok: false, error: refused };
  const { parseDocument } = await (parser ??= import('yaml'));
  const doc = parseDocument(text, { customTags: CUSTOM_TAGS, prettyErrors: true });
  const first = doc.errors[0];
  if (first) return { ok: false, error: first.message };
  try {
    return { ok: true, value: doc.toJS({ maxAliasCount: 1000 }) };
  } catch (err) {
    // toJS throws on alias bombs and similar; treat as unparsable rather than crash a scan.
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

export function asString(value: unknown): string {
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : '';
}
