/**
 * Free-text search over slim entries: every whitespace-separated term must occur (case-insensitive)
 * in one of the entry's fields. Matches are ranked: the whole query is the id or name, then the id or
 * name starts with it, then every term is in the id or name, then description-only matches; ties keep
 * index order. Regexes with the `i` flag test without allocating lower-cased copies of each entry.
 */
export interface SearchFields {
  primary: readonly (string | undefined | null)[];
  secondary: readonly (string | undefined | null)[];
}

export type Ranker<E> = (entry: E) => number | undefined;

export function searchRanker<E>(query: string | undefined, fields: (e: E) => SearchFields): Ranker<E> | undefined {
  const text = query?.trim() ?? '';
  if (text === '') return undefined;
  const lower = text.toLowerCase();
  const terms = lower.split(/\s+/).map((t) => new RegExp(escapeRegExp(t), 'i'));
  const prefix = new RegExp(`^${escapeRegExp(lower)}`, 'i');
  return (entry) => {
    const { primary, secondary } = fields(entry);
    let inPrimary = true;
    for (const term of terms) {
      if (primary.some((f) => f && term.test(f))) continue;
      inPrimary = false;
      if (!secondary.some((f) => f && term.test(f))) return undefined;
    }
    if (!inPrimary) return 3;
    if (primary.some((f) => f && f.toLowerCase() === lower)) return 0;
    if (primary.some((f) => f && prefix.test(f))) return 1;
    return 2;
  };
}

/** Entries that pass `keep`, ranked by `rank` when a query is given, else in index order. */
export function select<E>(entries: readonly E[], keep: (e: E) => boolean, rank: Ranker<E> | undefined): E[] {
  if (!rank) return entries.filter(keep);
  const scored: { entry: E; score: number; at: number }[] = [];
  entries.forEach((entry, at) => {
    if (!keep(entry)) return;
    const score = rank(entry);
    if (score !== undefined) scored.push({ entry, score, at });
  });
  scored.sort((a, b) => a.score - b.score || a.at - b.at);
  return scored.map((s) => s.entry);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
