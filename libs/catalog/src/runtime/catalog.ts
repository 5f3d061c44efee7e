import { catalogPb, type BusImplementation } from '@kiln/contracts';
import { invalidArgs, KilnError } from '@kiln/core';
import { AUTOMATION_KINDS, type AutomationKind, type AutomationSlim, type BoardSlim, type ComponentSlim } from '../format/index.js';
import { BodyCache, type BodyCacheLimits } from './bodies.js';
import { loadCatalog, type EntryTable, type LoadedCatalog } from './load.js';
import { searchRanker, select } from './search.js';

/** Page size when a query gives no limit, and the largest page one reply may carry. */
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

const KIND_BY_PB: Record<catalogPb.AutomationKind, AutomationKind | undefined> = {
  [catalogPb.AutomationKind.AUTOMATION_KIND_UNSPECIFIED]: undefined,
  [catalogPb.AutomationKind.AUTOMATION_KIND_TRIGGERS]: 'triggers',
  [catalogPb.AutomationKind.AUTOMATION_KIND_ACTIONS]: 'actions',
  [catalogPb.AutomationKind.AUTOMATION_KIND_CONDITIONS]: 'conditions',
  [catalogPb.AutomationKind.AUTOMATION_KIND_FILTERS]: 'filters',
  [catalogPb.AutomationKind.AUTOMATION_KIND_LIGHT_EFFECTS]: 'light_effects',
};

/** The chips' network providers other than Wi-Fi: a board with one of them does not need Wi-Fi set up. */
const OWN_NETWORK = new Set(['ethernet', 'thread']);

/**
 * The loaded catalog answering every query (CatalogService in catalog.proto; fields a request leaves
 * out take their proto defaults): listing, filtering, categories, docs and the automation
 * domain partition from the slim index alone; bodies through the bounded cache.
 */
export class Catalog implements BusImplementation<catalogPb.CatalogServiceDefinition> {
  private readonly bodies: BodyCache;
  /** Automations per kind, core entries first (upstream's partition order), computed once. */
  private readonly automationOrder: Record<AutomationKind, readonly AutomationSlim[]>;

  private constructor(
    private readonly loaded: LoadedCatalog,
    limits: BodyCacheLimits,
  ) {
    this.bodies = new BodyCache(loaded.root, limits);
    this.automationOrder = Object.fromEntries(
      AUTOMATION_KINDS.map((kind) => {
        const entries = loaded.automations[kind].entries;
        return [kind, [...entries.filter((e) => isCore(e)), ...entries.filter((e) => !isCore(e))]];
      }),
    ) as unknown as Record<AutomationKind, readonly AutomationSlim[]>;
  }

  static async open(root: string, limits: BodyCacheLimits): Promise<Catalog> {
    return new Catalog(await loadCatalog(root), limits);
  }

  get root(): string {
    return this.loaded.root;
  }

  counts(): Record<string, number> {
    return {
      components: this.loaded.components.entries.length,
      boards: this.loaded.boards.entries.length,
      ...Object.fromEntries(AUTOMATION_KINDS.map((k) => [k, this.loaded.automations[k].entries.length])),
    };
  }

  cacheStats() {
    return this.bodies.stats();
  }

  async getComponents(req: Partial<catalogPb.GetComponentsRequest>): Promise<catalogPb.JsonResult> {
    const platform = this.platformScope(req.platform, req.boardId);
    const excluded = new Set(req.excludeCategory ?? []);
    const rank = searchRanker<ComponentSlim>(req.query, (e) => ({ primary: [e.id, e.name], secondary: [e.description] }));
    const matches = select(
      this.loaded.components.entries,
      (e) =>
        (!req.category || e.category === req.category) &&
        !excluded.has(e.category) &&
        (!platform || supportsPlatform(e, platform)) &&
        (!req.provides || (e.provides?.includes(req.provides) ?? false)),
      rank,
    );
    const featured = req.boardId ? new Set(this.loaded.featured.get(req.boardId)) : undefined;
    if (!featured?.size) return { json: JSON.stringify({ components: page(matches, req.offset, req.limit), total: matches.length }) };
    // For a board, the components its featured components use come first (stable), marked `featured`.
    const ordered = [...matches.filter((e) => featured.has(e.id)), ...matches.filter((e) => !featured.has(e.id))];
    const components = page(ordered, req.offset, req.limit).map((e) => (featured.has(e.id) ? { ...e, featured: true } : e));
    return { json: JSON.stringify({ components, total: matches.length }) };
  }

  async getComponentBodies(req: Partial<catalogPb.GetComponentBodiesRequest>): Promise<catalogPb.JsonResult> {
    const ids = req.componentIds ?? [];
    if (ids.length > MAX_PAGE_SIZE) throw invalidArgs('component_ids', ids.length, `at most ${MAX_PAGE_SIZE} ids at once`);
    const platform = this.platformScope(req.platform, req.boardId);
    const table = this.loaded.components;
    const wanted = ids.filter((id) => {
      const entry = table.get(id);
      return entry !== undefined && (!platform || supportsPlatform(entry, platform));
    });
    return { json: `{"components":[${(await this.readBodies(table, wanted)).join(',')}]}` };
  }

  async getCategories(req: Partial<catalogPb.GetCategoriesRequest>): Promise<catalogPb.JsonResult> {
    const platform = this.platformScope('', req.boardId);
    const counts = new Map<string, number>();
    for (const e of this.loaded.components.entries) {
      if (!platform || supportsPlatform(e, platform)) counts.set(e.category, (counts.get(e.category) ?? 0) + 1);
    }
    const categories = [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([category, count]) => ({ category, count }));
    return { json: JSON.stringify({ categories }) };
  }

  async getIntegrationDocs(): Promise<catalogPb.JsonResult> {
    const docs = this.loaded.components.entries.filter((e) => e.docs_url).map((e) => ({ id: e.id, name: e.name, category: e.category, docs_url: e.docs_url }));
    return { json: JSON.stringify({ docs }) };
  }

  async getPinRegistryModes(): Promise<catalogPb.JsonResult> {
    return { json: JSON.stringify({ modes: this.loaded.meta.pin_registry_modes }) };
  }

  async getBoards(req: Partial<catalogPb.GetBoardsRequest>): Promise<catalogPb.JsonResult> {
    const rank = searchRanker<BoardSlim>(req.query, (e) => ({ primary: [e.id, e.name], secondary: [e.manufacturer, e.description, ...(e.tags ?? [])] }));
    const variant = req.variant?.toLowerCase();
    const matches = select(
      this.loaded.boards.entries,
      (e) =>
        (!req.platform || e.esphome.platform === req.platform) &&
        (!variant || e.esphome.variant?.toLowerCase() === variant) &&
        (!req.mcu || e.esphome.mcu === req.mcu) &&
        (!req.tag || (e.tags?.includes(req.tag) ?? false)),
      rank,
    );
    return { json: JSON.stringify({ boards: page(matches, req.offset, req.limit), total: matches.length }) };
  }

  async getBoard(req: Partial<catalogPb.BoardRequest>): Promise<catalogPb.JsonResult> {
    const board = this.board(req.boardId ?? '');
    const [body] = await this.readBodies(this.loaded.boards, [board.id]);
    const parsed = JSON.parse(body!.toString('utf8')) as Record<string, unknown>;
    return { json: JSON.stringify({ ...parsed, requires_wifi: this.requiresWifi(board, parsed) }) };
  }

  async getCompatibleBoards(req: Partial<catalogPb.BoardRequest>): Promise<catalogPb.JsonResult> {
    const board = this.loaded.boards.get(req.boardId ?? '');
    const boards = board
      ? this.loaded.boards.entries.filter((e) => e.esphome.platform === board.esphome.platform && e.esphome.board === board.esphome.board)
      : [];
    return { json: JSON.stringify({ boards, total: boards.length }) };
  }

  /**
   * One kind's full list, core entries first. `platform` / `board_id` are accepted for upstream
   * parity and, as upstream does today, do not narrow the list (an unknown board is still refused).
   */
  async getAutomations(req: Partial<catalogPb.GetAutomationsRequest>): Promise<catalogPb.JsonResult> {
    const kind = KIND_BY_PB[req.kind ?? catalogPb.AutomationKind.AUTOMATION_KIND_UNSPECIFIED];
    if (!kind) throw invalidArgs('kind', req.kind, `must be one of ${AUTOMATION_KINDS.join(', ')}`);
    this.platformScope(req.platform, req.boardId);
    return { json: JSON.stringify({ [kind]: this.automationOrder[kind] }) };
  }

  async getAutomationBodies(req: Partial<catalogPb.GetAutomationBodiesRequest>): Promise<catalogPb.JsonResult> {
    const ids = req.ids ?? [];
    if (ids.length > MAX_PAGE_SIZE) throw invalidArgs('ids', ids.length, `at most ${MAX_PAGE_SIZE} ids at once`);
    const only = KIND_BY_PB[req.kind ?? catalogPb.AutomationKind.AUTOMATION_KIND_UNSPECIFIED];
    const kinds = only ? [only] : AUTOMATION_KINDS;
    const parts: string[] = [];
    for (const kind of kinds) {
      const table = this.loaded.automations[kind];
      const bodies = await this.readBodies(
        table,
        ids.filter((id) => table.get(id)),
      );
      parts.push(`${JSON.stringify(kind)}:[${bodies.join(',')}]`);
    }
    return { json: `{${parts.join(',')}}` };
  }

  async getInfo(): Promise<catalogPb.JsonResult> {
    return { json: JSON.stringify({ root: this.loaded.root, manifest_sha256: this.loaded.manifestSha256, source: this.loaded.source, counts: this.counts(), cache: this.cacheStats() }) };
  }

  /**
   * The platform a query is scoped to: `platform`, or the board's. An unknown board is an error;
   * both given and disagreeing is an error.
   */
  private platformScope(platform: string | undefined, boardId: string | undefined): string | undefined {
    if (!boardId) return platform || undefined;
    const boardPlatform = this.board(boardId).esphome.platform;
    if (platform && platform !== boardPlatform) {
      throw new KilnError('invalid_args', `platform: ${JSON.stringify(platform)} is not the platform of board ${JSON.stringify(boardId)} (${boardPlatform})`, {
        field: 'platform',
        value: platform,
      });
    }
    return boardPlatform;
  }

  private board(boardId: string): BoardSlim {
    const board = this.loaded.boards.get(boardId);
    if (!board) throw new KilnError('not_found', `board_id: no board ${JSON.stringify(boardId)} in the catalog`, { field: 'board_id', value: boardId });
    return board;
  }

  /** Bodies in the order asked (duplicates once), read concurrently through the cache. */
  private readBodies<E extends { id: string }>(table: EntryTable<E>, ids: readonly string[]): Promise<Buffer[]> {
    return Promise.all([...new Set(ids)].map((id) => this.bodies.get(table.relPath(id), table.digest(id)!)));
  }

  /**
   * Whether the wizard must set up Wi-Fi: the board's network is Wi-Fi only. The board's declared
   * connectivity decides; without it, the chip's capabilities (upstream's platform_capabilities).
   */
  private requiresWifi(board: BoardSlim, body: Record<string, unknown>): boolean {
    const hardware = body['hardware'] as { connectivity?: unknown } | undefined;
    const networks = Array.isArray(hardware?.connectivity) ? (hardware.connectivity as string[]) : this.chipHasWifi(board) ? ['wifi'] : [];
    return networks.includes('wifi') && !networks.some((n) => OWN_NETWORK.has(n));
  }

  private chipHasWifi(board: BoardSlim): boolean {
    const caps = this.loaded.meta.platform_capabilities as { esp32_no_wifi_variants?: string[]; rp2040_no_wifi_boards?: string[] };
    switch (board.esphome.platform) {
      case 'esp32':
        return !(caps.esp32_no_wifi_variants ?? []).includes((board.esphome.variant ?? 'esp32').toUpperCase());
      case 'rp2040':
        return !(caps.rp2040_no_wifi_boards ?? []).includes(board.esphome.board);
      case 'nrf52':
      case 'host':
        return false;
      default:
        return true;
    }
  }
}

/** Core automations (control flow, device-level triggers) lead every list, as upstream partitions them. */
function isCore(e: AutomationSlim): boolean {
  return e.domain === 'core' || e.is_device_level === true;
}

/** A component without `supported_platforms` runs everywhere. */
function supportsPlatform(e: ComponentSlim, platform: string): boolean {
  return !e.supported_platforms || e.supported_platforms.includes(platform);
}

function page<E>(entries: readonly E[], offset = 0, limit = 0): readonly E[] {
  if (limit > MAX_PAGE_SIZE) throw invalidArgs('limit', limit, `must be at most ${MAX_PAGE_SIZE}`);
  const size = limit === 0 ? DEFAULT_PAGE_SIZE : limit;
  return entries.slice(offset, offset + size);
}
