/**
 * Walking JSON-shaped values that came from outside without recursion. JSON.parse builds a value
 * 100,000 arrays deep from a 200 KB frame without complaint, but JSON.stringify, String() and any
 * recursive walk of it overflow the stack (a RangeError that escapes every handler): code that
 * describes or inspects such a value goes through these helpers instead.
 */

/** Where a value nests containers deeper than a limit: the keys down to the first container past it. */
export function nestingBeyond(value: unknown, limit: number): string[] | undefined {
  interface Step {
    value: unknown;
    depth: number;
    key: string;
    parent: Step | undefined;
  }
  const stack: Step[] = [{ value, depth: 0, key: '', parent: undefined }];
  while (stack.length > 0) {
    const step = stack.pop()!;
    if (typeof step.value !== 'object' || step.value === null) continue;
    const depth = step.depth + 1;
    if (depth > limit) {
      const path: string[] = [];
      for (let s: Step | undefined = step; s?.parent; s = s.parent) path.unshift(s.key);
      return path;
    }
    const entries = Array.isArray(step.value) ? step.value.map((v, i) => [String(i), v] as const) : Object.entries(step.value);
    for (let i = entries.length - 1; i >= 0; i--) stack.push({ value: entries[i]![1], depth, key: entries[i]![0], parent: step });
  }
  return undefined;
}

type Piece = { text: string } | { value: unknown; toJsonDone?: boolean } | { items: readonly unknown[]; next: number } | { object: object; keys: string[]; next: number; emitted: boolean };

/**
 * `value` as JSON text, cut after `maxChars` characters with "…". Built iteratively and stopped at
 * the budget, so a value of any depth or size (or a cycle) takes about `maxChars` of output to
 * describe and never throws; what JSON cannot hold reads as JSON.stringify would show it (or as
 * `String(value)` at the top).
 */
export function jsonPreview(value: unknown, maxChars: number): string {
  let out = '';
  const cut = () => `${out.slice(0, maxChars)}…`;
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') return String(value).slice(0, maxChars);
  const pending: Piece[] = [{ value }];
  try {
    while (pending.length > 0) {
      if (out.length > maxChars) return cut();
      const piece = pending.pop()!;
      if ('text' in piece) out += piece.text;
      else if ('items' in piece) {
        if (piece.next >= piece.items.length) out += ']';
        else {
          if (piece.next > 0) out += ',';
          const item = piece.items[piece.next++];
          pending.push(piece, { value: item === undefined || typeof item === 'function' || typeof item === 'symbol' ? null : item });
        }
      } else if ('keys' in piece) {
        const key = piece.keys[piece.next++];
        if (key === undefined) out += '}';
        else {
          const item = (piece.object as Record<string, unknown>)[key];
          pending.push(piece);
          if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
          out += `${piece.emitted ? ',' : ''}${JSON.stringify(key.length > maxChars ? key.slice(0, maxChars) : key)}:`;
          piece.emitted = true;
          pending.push({ value: item });
        }
      } else out += render(piece, pending, maxChars);
    }
  } catch {
    // A getter or toJSON that throws: what was rendered so far is the description.
    return cut();
  }
  return out.length > maxChars ? cut() : out;
}

/** A scalar's text; a container opens (its items follow as pieces). */
function render(piece: { value: unknown; toJsonDone?: boolean }, pending: Piece[], maxChars: number): string {
  const v = piece.value;
  if (typeof v === 'string') return JSON.stringify(v.length > maxChars ? v.slice(0, maxChars) : v);
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : 'null';
  if (typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (typeof v !== 'object' || v === null) return 'null';
  const toJSON = (v as { toJSON?: unknown }).toJSON;
  // One toJSON per value, as JSON.stringify does (a toJSON returning another such object is not followed forever).
  if (typeof toJSON === 'function' && !piece.toJsonDone) {
    pending.push({ value: toJSON.call(v), toJsonDone: true });
    return '';
  }
  if (Array.isArray(v)) {
    pending.push({ items: v, next: 0 });
    return '[';
  }
  pending.push({ object: v, keys: Object.keys(v), next: 0, emitted: false });
  return '{';
}
