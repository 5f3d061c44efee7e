import { catalogPb } from '@kiln/contracts';
import { RawJson } from '../ws/protocol.js';
import { parseArgs, v } from './args.js';
import type { CommandHandler } from './types.js';

const text = v.pipe(v.string('must be a string'), v.maxLength(200, 'is too long'));
const id = v.pipe(v.string('must be a string'), v.minLength(1, 'must not be empty'), v.maxLength(128, 'is too long'));
const ids = v.pipe(v.array(id, 'must be a list of ids'), v.maxLength(1000, 'at most 1000 at once'));
const count = (max: number) => v.pipe(v.number('must be a number'), v.integer('must be an integer'), v.minValue(0, 'must not be negative'), v.maxValue(max, `must be at most ${max}`));
const scope = { platform: v.optional(text), board_id: v.optional(id) };

const componentsArgs = v.strictObject({
  query: v.optional(text),
  category: v.optional(text),
  // Upstream takes one category; a list excludes several.
  exclude_category: v.optional(v.union([text, v.array(text)], 'must be a category or a list of categories')),
  ...scope,
  provides: v.optional(text),
  offset: v.optional(count(1_000_000)),
  limit: v.optional(v.pipe(count(1000), v.minValue(1, 'must be at least 1'))),
});

const boardsArgs = v.strictObject({
  query: v.optional(text),
  platform: v.optional(text),
  variant: v.optional(text),
  mcu: v.optional(text),
  tag: v.optional(text),
  offset: v.optional(count(1_000_000)),
  limit: v.optional(v.pipe(count(1000), v.minValue(1, 'must be at least 1'))),
});

const KINDS = {
  triggers: catalogPb.AutomationKind.AUTOMATION_KIND_TRIGGERS,
  actions: catalogPb.AutomationKind.AUTOMATION_KIND_ACTIONS,
  conditions: catalogPb.AutomationKind.AUTOMATION_KIND_CONDITIONS,
  filters: catalogPb.AutomationKind.AUTOMATION_KIND_FILTERS,
  light_effects: catalogPb.AutomationKind.AUTOMATION_KIND_LIGHT_EFFECTS,
} as const;

const automationList =
  (kind: keyof typeof KINDS): CommandHandler =>
  async (ctx, args) => {
    const a = parseArgs(v.strictObject(scope), args);
    return { result: new RawJson((await ctx.catalog.getAutomations({ kind: KINDS[kind], platform: a.platform ?? '', boardId: a.board_id ?? '' })).json) };
  };

/** `components/*`, `boards/*`, `automations/*`: the catalog service's replies, forwarded as they come. */
export const catalogCommands: Record<string, CommandHandler> = {
  'components/get_components': async (ctx, args) => {
    const a = parseArgs(componentsArgs, args);
    const excluded = a.exclude_category === undefined ? [] : Array.isArray(a.exclude_category) ? a.exclude_category : [a.exclude_category];
    const { json } = await ctx.catalog.getComponents({
      query: a.query ?? '',
      category: a.category ?? '',
      excludeCategory: excluded,
      platform: a.platform ?? '',
      boardId: a.board_id ?? '',
      provides: a.provides ?? '',
      offset: a.offset ?? 0,
      limit: a.limit ?? 0,
    });
    return { result: new RawJson(json) };
  },
  'components/get_component_bodies': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ component_ids: ids, ...scope }), args);
    return { result: new RawJson((await ctx.catalog.getComponentBodies({ componentIds: a.component_ids, platform: a.platform ?? '', boardId: a.board_id ?? '' })).json) };
  },
  'components/get_categories': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ board_id: v.optional(id) }), args);
    return { result: new RawJson((await ctx.catalog.getCategories({ boardId: a.board_id ?? '' })).json) };
  },
  'components/get_integration_docs': async (ctx, args) => {
    parseArgs(v.strictObject({}), args);
    return { result: new RawJson((await ctx.catalog.getIntegrationDocs({})).json) };
  },
  'components/get_pin_registry_modes': async (ctx, args) => {
    parseArgs(v.strictObject({}), args);
    return { result: new RawJson((await ctx.catalog.getPinRegistryModes({})).json) };
  },
  'boards/get_boards': async (ctx, args) => {
    const a = parseArgs(boardsArgs, args);
    const { json } = await ctx.catalog.getBoards({
      query: a.query ?? '',
      platform: a.platform ?? '',
      variant: a.variant ?? '',
      mcu: a.mcu ?? '',
      tag: a.tag ?? '',
      offset: a.offset ?? 0,
      limit: a.limit ?? 0,
    });
    return { result: new RawJson(json) };
  },
  'boards/get_board': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ board_id: id }), args);
    return { result: new RawJson((await ctx.catalog.getBoard({ boardId: a.board_id })).json) };
  },
  'boards/get_compatible_boards': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ board_id: id }), args);
    return { result: new RawJson((await ctx.catalog.getCompatibleBoards({ boardId: a.board_id })).json) };
  },
  'automations/get_triggers': automationList('triggers'),
  'automations/get_actions': automationList('actions'),
  'automations/get_conditions': automationList('conditions'),
  'automations/get_filters': automationList('filters'),
  'automations/get_light_effects': automationList('light_effects'),
  'automations/get_bodies': async (ctx, args) => {
    const a = parseArgs(v.strictObject({ ids, kind: v.optional(v.picklist(Object.keys(KINDS) as (keyof typeof KINDS)[], `must be one of ${Object.keys(KINDS).join(', ')}`)) }), args);
    const kind = a.kind ? KINDS[a.kind] : catalogPb.AutomationKind.AUTOMATION_KIND_UNSPECIFIED;
    return { result: new RawJson((await ctx.catalog.getAutomationBodies({ ids: a.ids, kind })).json) };
  },
};
