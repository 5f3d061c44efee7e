import { v } from '@kiln/config';
import { isSafeId } from '@kiln/core';
import type { AutomationKind } from './layout.js';

/**
 * The entry shapes, as upstream publishes them (snake_case, field names kept so a reply is the
 * entry itself). Unknown fields are kept (`looseObject`): upstream adds fields between releases and
 * a body is served verbatim; the fields Kiln reads are checked.
 */
const id = v.pipe(
  v.string('must be a string'),
  v.check((value: string) => isSafeId(value), 'must be 1-128 characters of letters, digits, ".", "_" or "-"'),
);
const text = v.string('must be a string');
const optionalText = v.optional(v.nullable(text));
const names = v.array(v.string('must be a string'), 'must be a list of strings');

export const componentSlimSchema = v.looseObject({
  id,
  name: text,
  description: v.optional(text),
  category: v.pipe(text, v.minLength(1, 'must not be empty')),
  docs_url: optionalText,
  image_url: optionalText,
  dependencies: v.optional(names),
  multi_conf: v.optional(v.boolean('must be a boolean')),
  provides: v.optional(names),
  provides_id_paths: v.optional(v.record(v.string(), v.array(names))),
  supported_platforms: v.optional(names),
});

export const componentBodySchema = v.looseObject({
  ...componentSlimSchema.entries,
  config_entries: v.optional(v.array(v.looseObject({ key: text, type: text }), 'must be a list of config entries')),
});

const automationBase = {
  id,
  name: text,
  description: v.optional(text),
  docs_url: optionalText,
};

/** Slim automation entries: exactly what the domain partition and listing read. */
export const automationSlimSchemas = {
  triggers: v.looseObject({ ...automationBase, applies_to: names, is_device_level: v.boolean('must be a boolean'), supports_list: v.optional(v.boolean()) }),
  actions: v.looseObject({
    ...automationBase,
    domain: text,
    is_control_flow: v.optional(v.boolean()),
    has_else_branch: v.optional(v.boolean()),
    accepts_action_list: v.optional(names),
    form_editable: v.optional(v.boolean()),
  }),
  conditions: v.looseObject({ ...automationBase, domain: text, accepts_condition_list: v.optional(v.boolean()) }),
  filters: v.looseObject({ ...automationBase, applies_to: names, value_type: v.optional(v.nullable(text)), templatable: v.optional(v.boolean()) }),
  light_effects: v.looseObject({ ...automationBase, applies_to: names, value_type: v.optional(v.nullable(text)), templatable: v.optional(v.boolean()) }),
} satisfies Record<AutomationKind, v.GenericSchema>;

export const automationBodySchema = v.looseObject({ id, name: text, config_entries: v.optional(v.array(v.looseObject({ key: text, type: text }))) });

const boardEsphome = v.looseObject({
  board: text,
  platform: v.pipe(text, v.minLength(1, 'must not be empty')),
  variant: v.optional(text),
  mcu: v.optional(text),
  framework: v.optional(text),
});

export const boardSlimSchema = v.looseObject({
  id,
  name: text,
  description: v.optional(text),
  docs_url: optionalText,
  manufacturer: v.optional(text),
  esphome: boardEsphome,
  featured: v.optional(v.boolean()),
  is_generic: v.optional(v.boolean()),
  images: v.optional(names),
  product_url: optionalText,
  tags: v.optional(names),
});

export const boardBodySchema = v.looseObject({ ...boardSlimSchema.entries });

/** The board fields that belong in the slim index (the rest — pins, hardware, featured… — is body). */
export const BOARD_SLIM_FIELDS = ['id', 'name', 'description', 'docs_url', 'manufacturer', 'esphome', 'featured', 'is_generic', 'images', 'product_url', 'tags'] as const;

/** Component fields of the slim index (upstream's components.index.json shape). */
export const COMPONENT_SLIM_FIELDS = [
  'id',
  'name',
  'description',
  'category',
  'docs_url',
  'image_url',
  'dependencies',
  'multi_conf',
  'provides',
  'provides_id_paths',
  'supported_platforms',
] as const;

/** Automation fields of the slim index, per kind (everything but config_entries and option schemas). */
export const AUTOMATION_SLIM_FIELDS: Record<AutomationKind, readonly string[]> = {
  triggers: ['id', 'name', 'description', 'docs_url', 'applies_to', 'is_device_level', 'supports_list'],
  actions: ['id', 'name', 'description', 'docs_url', 'domain', 'is_control_flow', 'has_else_branch', 'accepts_action_list', 'form_editable'],
  conditions: ['id', 'name', 'description', 'docs_url', 'domain', 'accepts_condition_list'],
  filters: ['id', 'name', 'description', 'docs_url', 'applies_to', 'value_type', 'templatable'],
  light_effects: ['id', 'name', 'description', 'docs_url', 'applies_to', 'value_type', 'templatable'],
};

export type ComponentSlim = v.InferOutput<typeof componentSlimSchema>;
export type BoardSlim = v.InferOutput<typeof boardSlimSchema>;
export type AutomationSlim = { id: string; name: string; domain?: string; applies_to?: string[]; is_device_level?: boolean; [k: string]: unknown };

/** Copy the listed fields that are present (the slim projection of a body). */
export function pick(entry: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields) if (entry[f] !== undefined) out[f] = entry[f];
  return out;
}
