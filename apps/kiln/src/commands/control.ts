import { loadConfig } from '@kiln/config';
import { KilnError } from '@kiln/core';
import type { ParsedHostArgs } from '../args.js';
import { isAlive, readRunFiles } from '../run-file.js';

const ACTIONS = ['stop', 'start', 'restart'];

/** `kiln control <service> <stop|start|restart>`: one service in a running host; the host stays up. */
export async function control(args: ParsedHostArgs, out: (line: string) => void): Promise<number> {
  const [service, action] = args.positionals;
  if (!service || !action || !ACTIONS.includes(action)) {
    throw new KilnError('invalid_args', `usage: kiln control <service> <${ACTIONS.join('|')}> (got ${JSON.stringify(args.positionals)})`, { field: 'action', value: action ?? null });
  }
  let url = args.url;
  if (!url) {
    const config = await loadConfig({ flags: args.flags, ...(args.configFile ? { configFile: args.configFile } : {}) });
    const host = (await readRunFiles(config.core.dataDir)).find((f) => isAlive(f.pid) && f.healthUrl && f.services.includes(service));
    if (!host?.healthUrl) throw new KilnError('not_found', `no running host on data dir ${config.core.dataDir} hosts ${JSON.stringify(service)}`, { service });
    url = host.healthUrl;
  }
  const res = await fetch(`${url}/services/${encodeURIComponent(service)}/${action}`, { method: 'POST', signal: AbortSignal.timeout(60_000) });
  const body = (await res.json()) as { state?: string; error?: { message: string } };
  if (!res.ok) throw new KilnError(res.status === 404 ? 'not_found' : 'failed_precondition', body.error?.message ?? `HTTP ${res.status}`, { service, action });
  out(`${service}: ${body.state}`);
  return 0;
}
