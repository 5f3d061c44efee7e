/** Where a setting came from, so a bad value's error says which flag, variable or file to fix. */
export type Source = { kind: 'flag'; name: string } | { kind: 'env'; name: string } | { kind: 'file'; path: string };

export type Tree = { [key: string]: unknown };

export interface Layer {
  values: Tree;
  /** dotted path → where it was set */
  origins: Map<string, Source>;
}

export function describeSource(source: Source | undefined): string {
  if (!source) return 'default';
  switch (source.kind) {
    case 'flag':
      return `flag ${source.name}`;
    case 'env':
      return `environment variable ${source.name}`;
    case 'file':
      return `config file ${source.path}`;
  }
}

export function emptyLayer(): Layer {
  return { values: {}, origins: new Map() };
}

export function setPath(layer: Layer, path: string, value: unknown, source: Source): void {
  const keys = path.split('.');
  let node = layer.values;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Tree;
  }
  node[keys[keys.length - 1]!] = value;
  layer.origins.set(path, source);
}

/** Later layers win; objects merge key by key, everything else is replaced. */
export function mergeLayers(layers: readonly Layer[]): Layer {
  const merged = emptyLayer();
  for (const layer of layers) {
    mergeInto(merged.values, layer.values);
    for (const [path, source] of layer.origins) merged.origins.set(path, source);
  }
  return merged;
}

function mergeInto(target: Tree, source: Tree): void {
  for (const [key, value] of Object.entries(source)) {
    const existing = target[key];
    if (isTree(value) && isTree(existing)) mergeInto(existing, value);
    else target[key] = isTree(value) ? structuredClone(value) : value;
  }
}

export function isTree(value: unknown): value is Tree {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Record an origin for every leaf of a tree read from a file. */
export function layerFromTree(values: Tree, source: Source, prefix = ''): Layer {
  const layer: Layer = { values, origins: new Map() };
  const walk = (node: Tree, at: string): void => {
    for (const [key, value] of Object.entries(node)) {
      const path = at ? `${at}.${key}` : key;
      if (isTree(value)) walk(value, path);
      else layer.origins.set(path, source);
    }
  };
  walk(values, prefix);
  return layer;
}

/** The closest recorded origin for a path (a value set as a whole object covers its leaves). */
export function originOf(layer: Layer, path: string): Source | undefined {
  for (let p = path; p; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') {
    const source = layer.origins.get(p);
    if (source) return source;
  }
  return undefined;
}
