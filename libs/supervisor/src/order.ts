import { KilnError } from '@kiln/core';

export interface Ordered {
  readonly name: string;
  readonly dependsOn: readonly string[];
}

/**
 * Dependency order for the hosted services. A dependency that is not hosted here is assumed to
 * run elsewhere (over NATS), so it only orders what is co-hosted. Cycles are configuration bugs.
 */
export function startOrder<T extends Ordered>(items: readonly T[]): T[] {
  const byName = new Map(items.map((i) => [i.name, i]));
  const state = new Map<string, 'visiting' | 'done'>();
  const ordered: T[] = [];
  const visit = (item: T, path: string[]): void => {
    const s = state.get(item.name);
    if (s === 'done') return;
    if (s === 'visiting') {
      throw new KilnError('invalid_args', `service dependency cycle: ${[...path, item.name].join(' -> ')}`, { field: 'services', value: path });
    }
    state.set(item.name, 'visiting');
    for (const dep of item.dependsOn) {
      const target = byName.get(dep);
      if (target) visit(target, [...path, item.name]);
    }
    state.set(item.name, 'done');
    ordered.push(item);
  };
  for (const item of items) visit(item, []);
  return ordered;
}
