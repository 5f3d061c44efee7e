/**
 * ESPHome substitutions, as far as the config bundle needs them: to know which files a `file:`,
 * `path:`, `source:`, `esphome: includes:` or `!include` value built from substitutions names.
 * Follows esphome (2025.x and later, `components/substitutions`): `$name` and `${name}` (its
 * VARIABLE_PROG: `$` then identifier characters, or braces around them; `$$` is not an escape),
 * values that reference other substitutions, and scopes: `!include` `vars:` shadow the
 * substitutions outside them, and a var may read the outer value of its own name
 * (`vars: {name: "${name}_2"}`). Any other Jinja form (`${ a ~ b }`, filters, `<% %>`) is not
 * evaluated here: the reference is reported unresolved.
 */

/** A substitution's value as written: text, a `!secret` (never resolved here), or something else (a map, a list, another tag). */
export type SubstitutionValue = { kind: 'text'; text: string } | { kind: 'secret'; name: string } | { kind: 'other'; what: string };

export type Resolution = { ok: true; value: string } | { ok: false; reason: string };

const VARIABLE = /\$([A-Za-z0-9_]+|\{[A-Za-z0-9_]*\})/g;
/** `${ name }` with spaces: Jinja reading one variable, the same value. */
const JINJA_VARIABLE = /\$\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}/g;
/** What esphome hands to Jinja after plain substitution (its `has_jinja`). */
const JINJA = /<%.+?%>|\$\{[^}]+\}/;

export class SubstitutionScope {
  private readonly vars: ReadonlyMap<string, SubstitutionValue>;
  private readonly cache = new Map<string, Resolution>();
  /** Names being resolved in this scope: reading one again reads the outer scope's (or is a cycle). */
  private readonly resolving = new Set<string>();
  readonly depth: number;
  /** Identity of the scope chain for "same file, same vars" de-duplication. */
  readonly key: string;

  constructor(
    vars: Iterable<readonly [string, SubstitutionValue]>,
    private readonly parent?: SubstitutionScope,
  ) {
    this.vars = new Map(vars);
    this.depth = parent ? parent.depth + 1 : 0;
    this.key = `${parent ? `${parent.key}\n` : ''}${JSON.stringify([...this.vars].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))}`;
  }

  child(vars: Iterable<readonly [string, SubstitutionValue]>): SubstitutionScope {
    return new SubstitutionScope(vars, this);
  }

  /** `text` with every substitution replaced, or why it cannot be. */
  expand(text: string): Resolution {
    if (!text.includes('$') && !text.includes('<%')) return { ok: true, value: text };
    let failure: Resolution | undefined;
    const replace = (match: string, name: string): string => {
      const bare = name.startsWith('{') ? name.slice(1, -1) : name;
      const found = this.lookup(bare);
      if (found?.ok) return found.value;
      failure ??= found ?? { ok: false, reason: `substitution '${bare}' is not defined` };
      return match;
    };
    const plain = text.replace(VARIABLE, replace);
    if (failure) return failure;
    const value = plain.replace(JINJA_VARIABLE, replace);
    if (failure) return failure;
    if (JINJA.test(value)) return { ok: false, reason: `${JSON.stringify(JINJA.exec(value)![0])} is a Jinja expression, not evaluated for the bundle` };
    return { ok: true, value };
  }

  /** The resolved value of `name` here (inner scope first), undefined when no scope defines it. */
  private lookup(name: string): Resolution | undefined {
    if (this.vars.has(name) && !this.resolving.has(name)) {
      const cached = this.cache.get(name);
      if (cached) return cached;
      this.resolving.add(name);
      let resolved: Resolution;
      try {
        resolved = this.resolve(name, this.vars.get(name)!);
      } finally {
        this.resolving.delete(name);
      }
      this.cache.set(name, resolved);
      return resolved;
    }
    const outer = this.parent?.lookup(name);
    if (outer) return outer;
    return this.vars.has(name) ? { ok: false, reason: `substitution '${name}' is part of a cycle (it refers back to itself)` } : undefined;
  }

  private resolve(name: string, value: SubstitutionValue): Resolution {
    if (value.kind === 'secret') return { ok: false, reason: `substitution '${name}' is !secret ${value.name}, not read for the bundle` };
    if (value.kind === 'other') return { ok: false, reason: `substitution '${name}' is ${value.what}, not a string` };
    return this.expand(value.text);
  }
}
