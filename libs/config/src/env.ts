import { setPath, emptyLayer, type Layer } from './layers.js';

/** Variables that steer loading itself rather than naming a setting. */
const RESERVED = new Set(['KILN_CONFIG_FILE']);
/**
 * `KILN_<COMMAND>_ARGS` (e.g. `KILN_SUPERVISE_ARGS` in the systemd unit) carries extra command-line flags for
 * a launcher to splice into ExecStart; it is not a setting, so an empty or set value must not be refused.
 */
const LAUNCHER_ARGS = /^KILN_[A-Z0-9]+_ARGS$/;

/**
 * `KILN_DATA_DIR` → `dataDir`; `KILN_LOGSTORE__GRPC_LISTEN` → `logstore.grpcListen`.
 * A double underscore separates path segments; single underscores become camelCase.
 */
export function envToPath(name: string): string | undefined {
  if (!name.startsWith('KILN_') || RESERVED.has(name) || LAUNCHER_ARGS.test(name)) return undefined;
  const segments = name.slice('KILN_'.length).split('__');
  if (segments.some((s) => s.length === 0)) return undefined;
  return segments.map((s) => s.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())).join('.');
}

export function pathToEnv(path: string): string {
  return `KILN_${path
    .split('.')
    .map((s) => s.replace(/([A-Z])/g, '_$1').toUpperCase())
    .join('__')}`;
}

export function layerFromEnv(env: NodeJS.ProcessEnv): Layer {
  const layer = emptyLayer();
  for (const [name, value] of Object.entries(env)) {
    const path = envToPath(name);
    if (path !== undefined && value !== undefined) setPath(layer, path, value, { kind: 'env', name });
  }
  return layer;
}
