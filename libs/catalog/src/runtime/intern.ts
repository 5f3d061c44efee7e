import type { AutomationSlim, BoardSlim, ComponentSlim } from '../format/index.js';

/**
 * One instance per distinct closed-vocabulary string (category, platform, dependency, domain, docs
 * base URL, tag …): JSON.parse gives every occurrence its own copy. Used during load only.
 */
export class Interner {
  private readonly pool = new Map<string, string>();

  str<T extends string | null | undefined>(value: T): T {
    if (typeof value !== 'string') return value;
    const known = this.pool.get(value);
    if (known !== undefined) return known as T;
    this.pool.set(value, value);
    return value;
  }

  list(values: string[] | undefined): string[] | undefined {
    if (!values) return values;
    for (let i = 0; i < values.length; i++) values[i] = this.str(values[i]!);
    return values;
  }

  /** Intern `obj[key]` in place when it is a string (absent keys stay absent). */
  field(obj: Record<string, unknown>, key: string): void {
    const value = obj[key];
    if (typeof value === 'string') obj[key] = this.str(value);
  }

  component(e: ComponentSlim): ComponentSlim {
    e.id = this.str(e.id);
    for (const key of ['category', 'docs_url', 'image_url']) this.field(e, key);
    this.list(e.dependencies);
    this.list(e.provides);
    this.list(e.supported_platforms);
    return e;
  }

  board(e: BoardSlim): BoardSlim {
    e.id = this.str(e.id);
    const esphome = e.esphome as Record<string, unknown>;
    for (const key of ['platform', 'variant', 'mcu', 'framework', 'board']) this.field(esphome, key);
    for (const key of ['manufacturer', 'docs_url']) this.field(e, key);
    this.list(e.tags);
    return e;
  }

  automation(e: AutomationSlim): AutomationSlim {
    for (const key of ['domain', 'docs_url', 'value_type']) this.field(e, key);
    this.list(e.applies_to);
    this.list(e['accepts_action_list'] as string[] | undefined);
    return e;
  }
}
