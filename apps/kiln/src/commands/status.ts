import { loadConfig } from '@kiln/config';
import { KilnError } from '@kiln/core';
import type { ParsedHostArgs } from '../args.js';
import { isAlive, readRunFiles } from '../run-file.js';

interface HealthBody {
  ready: boolean;
  degraded?: Array<{ dir: string; message: string }>;
  pid: number;
  services: Array<{ name: string; state: string; restarts: number; uptimeMs: number; lastError: string; health?: { detail?: Record<string, string> } }>;
  process: { rssBytes: number; heapUsedBytes: number; eventLoopDelayP99Ms: number };
}

/** `kiln status`: ask every host running on this data dir (or --url) for its health. Exit 0 when all are ready. */
export async function status(args: ParsedHostArgs, out: (line: string) => void): Promise<number> {
  const targets: Array<{ host: string; url: string }> = [];
  if (args.url) targets.push({ host: args.url, url: args.url });
  else {
    const config = await loadConfig({ flags: args.flags, ...(args.configFile ? { configFile: args.configFile } : {}) });
    for (const file of await readRunFiles(config.core.dataDir)) {
      if (!isAlive(file.pid)) {
        out(`${file.host}: not running (stale run file ${file.path}, pid ${file.pid})`);
        continue;
      }
      if (!file.healthUrl) {
        out(`${file.host}: pid ${file.pid} runs without a health endpoint`);
        continue;
      }
      targets.push({ host: file.host, url: file.healthUrl });
    }
    if (targets.length === 0) {
      out(`no kiln host is running with data dir ${config.core.dataDir}`);
      return 3;
    }
  }
  let allReady = true;
  const bodies: Array<{ host: string } & HealthBody> = [];
  for (const target of targets) {
    let body: HealthBody;
    try {
      const res = await fetch(`${target.url}/health`, { signal: AbortSignal.timeout(5_000) });
      body = (await res.json()) as HealthBody;
    } catch (err) {
      throw new KilnError('unavailable', `cannot reach ${target.host} at ${target.url}: ${(err as Error).message}`, { url: target.url });
    }
    allReady &&= body.ready;
    bodies.push({ host: target.host, ...body });
  }
  if (args.json) out(JSON.stringify(bodies, null, 2));
  else for (const body of bodies) out(render(body));
  return allReady ? 0 : 1;
}

function render(body: { host: string } & HealthBody): string {
  const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;
  const lines = [
    `${body.host} (pid ${body.pid}): ${body.ready ? 'ready' : 'NOT READY'} — rss ${mb(body.process.rssBytes)}, heap ${mb(body.process.heapUsedBytes)}, loop p99 ${body.process.eventLoopDelayP99Ms} ms`,
  ];
  // Older hosts do not send `degraded`.
  for (const d of body.degraded ?? []) lines.push(`  DEGRADED: ${d.message}`);
  for (const s of body.services) {
    const detail = Object.entries(s.health?.detail ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    const healthy = s.state === 'running' ? 'healthy' : s.state;
    lines.push(`  ${s.name.padEnd(12)} ${healthy.padEnd(8)} up ${Math.round(s.uptimeMs / 1000)}s restarts ${s.restarts}${detail ? `  ${detail}` : ''}${s.lastError ? `  last error: ${s.lastError}` : ''}`);
  }
  return lines.join('\n');
}
