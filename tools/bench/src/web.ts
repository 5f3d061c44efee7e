// The web page's weight (JS + CSS bytes, raw and gzip) next to an empty Vite page and a Preact
// hello-world built with the same Vite; and its time to first render of the device list in Chromium
// next to the time its WebSocket opened, both measured in the same page loads.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { sleep, table } from './proc.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const KILN = join(root, 'apps/kiln/bin/kiln');
const SIM = join(root, 'tools/esphome-sim/bin/esphome');
const WEB_ROOT = join(root, 'libs/web/dist/www');
const CHROMIUM = process.env.KILN_CHROMIUM ?? '/usr/bin/chromium';
const LOADS = Number(process.env.BENCH_WEB_LOADS ?? 15);
const DEVICES = Number(process.env.BENCH_WEB_DEVICES ?? 50);

interface Weight {
  files: number;
  raw: number;
  gzip: number;
}

/** JS and CSS a first load fetches (index.html excluded: it is the same few hundred bytes for every page). */
async function weightOf(www: string): Promise<Weight> {
  const assets = join(www, 'assets');
  const names = existsSync(assets) ? (await readdir(assets)).filter((n) => /\.(js|css)$/.test(n)) : [];
  let raw = 0;
  let gzip = 0;
  for (const name of names) {
    const bytes = await readFile(join(assets, name));
    raw += bytes.length;
    gzip += gzipSync(bytes, { level: 9 }).length;
  }
  return { files: names.length, raw, gzip };
}

/** Build a baseline page with the same Vite the web page uses (its CLI, default settings). */
async function buildBaseline(name: string, main: string): Promise<Weight> {
  const dir = join(root, 'tools/bench/dist/web-baselines', name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'index.html'), '<!doctype html><html><head><meta charset="utf-8"><title>baseline</title></head><body><script type="module" src="./main.js"></script></body></html>');
  await writeFile(join(dir, 'main.js'), main);
  const viteBin = join(dirname(createRequire(join(root, 'libs/web/package.json')).resolve('vite/package.json')), 'bin/vite.js');
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [viteBin, 'build', dir, '--outDir', join(dir, 'out'), '--emptyOutDir', '--logLevel', 'error'], { stdio: 'inherit' });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`vite build of the ${name} baseline exited ${code}`))));
  });
  return weightOf(join(dir, 'out'));
}

async function startKiln(): Promise<{ url: string; stop(): Promise<void> }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'kiln-bench-web-'));
  const configDir = join(dataDir, 'devices');
  await mkdir(configDir, { recursive: true });
  for (let i = 0; i < DEVICES; i++) await writeFile(join(configDir, `device-${i}.yaml`), `esphome:\n  name: device-${i}\nesp32:\n  board: esp32dev\n`);
  const child: ChildProcess = spawn(KILN, ['supervise', '--data-dir', dataDir, '--config-dir', configDir, '--set', 'supervisor.healthListen=127.0.0.1:0', '--set', 'gateway.listen=127.0.0.1:0', '--set', `firmware.toolchain=${SIM}`], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, HOME: dataDir, KILN_LOG_LEVEL: 'warn' },
  });
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    await rm(dataDir, { recursive: true, force: true });
  };
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`kiln supervise exited with ${child.exitCode}`);
    try {
      const run = JSON.parse(await readFile(join(dataDir, 'run/supervise.json'), 'utf8')) as { healthUrl?: string };
      if (run.healthUrl && (await fetch(`${run.healthUrl}/ready`)).status === 200) {
        const health = (await (await fetch(`${run.healthUrl}/health`)).json()) as { services: Array<{ name: string; health: { detail: Record<string, string> } }> };
        return { url: health.services.find((s) => s.name === 'gateway')!.health.detail.url!, stop };
      }
    } catch {
      // not up yet
    }
    await sleep(50);
  }
  await stop();
  throw new Error('kiln supervise did not become ready');
}

/** Cold loads (fresh browser context: no cache): ms from navigation start to each mark. */
async function firstRender(url: string): Promise<{ wsOpen: number[]; rendered: number[] }> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage'] });
  const wsOpen: number[] = [];
  const rendered: number[] = [];
  try {
    for (let i = 0; i < LOADS + 1; i++) {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(url);
      await page.waitForFunction(() => performance.getEntriesByName('kiln:devices-rendered').length > 0, undefined, { timeout: 30_000 });
      const rows = await page.locator('table[data-testid=devices] tbody tr').count();
      if (rows !== DEVICES) throw new Error(`device list shows ${rows} rows, expected ${DEVICES}`);
      const marks = await page.evaluate(() => ({
        wsOpen: performance.getEntriesByName('kiln:ws-open')[0]!.startTime,
        rendered: performance.getEntriesByName('kiln:devices-rendered')[0]!.startTime,
      }));
      await context.close();
      if (i === 0) continue; // warm-up: the first load also pays the browser's own start-up
      wsOpen.push(marks.wsOpen);
      rendered.push(marks.rendered);
    }
  } finally {
    await browser.close();
  }
  return { wsOpen, rendered };
}

export async function webBenchmarks(): Promise<void> {
  if (!existsSync(join(WEB_ROOT, 'index.html'))) throw new Error(`the web page is not built (${WEB_ROOT}); run npm run build`);
  const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
  const page = await weightOf(WEB_ROOT);
  const empty = await buildBaseline('empty', '// an empty Vite page\n');
  const preact = await buildBaseline('preact', "import { h, render } from 'preact';\nrender(h('p', null, 'hello'), document.body);\n");
  console.log('web page weight: JS + CSS a first load fetches (vite build; gzip -9 is what the gateway sends a browser: the .gz twins written at build time)');
  console.log(
    table([
      ['page', 'files', 'raw', 'gzip', 'gzip vs Preact hello-world'],
      ['empty Vite page', String(empty.files), kb(empty.raw), kb(empty.gzip), (empty.gzip / preact.gzip).toFixed(2)],
      ['Preact hello-world', String(preact.files), kb(preact.raw), kb(preact.gzip), '1.00'],
      ['Kiln web page', String(page.files), kb(page.raw), kb(page.gzip), (page.gzip / preact.gzip).toFixed(2)],
    ]),
  );
  console.log();

  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install -y chromium, or set KILN_CHROMIUM)`);
  const kiln = await startKiln();
  let loads;
  try {
    loads = await firstRender(kiln.url);
  } finally {
    await kiln.stop();
  }
  const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;
  const ms = (x: number) => `${x.toFixed(1)} ms`;
  const gap = loads.rendered.map((r, i) => r - loads.wsOpen[i]!);
  console.log(`first render of the device list (${DEVICES} devices, kiln supervise on loopback, headless Chromium, ${LOADS} cold loads after a warm-up; from navigation start)`);
  console.log(
    table([
      ['mark', 'p50', 'p90', 'ratio p50'],
      ['WebSocket open (baseline)', ms(pct(loads.wsOpen, 50)), ms(pct(loads.wsOpen, 90)), '1.00'],
      ['device list rendered', ms(pct(loads.rendered, 50)), ms(pct(loads.rendered, 90)), (pct(loads.rendered, 50) / pct(loads.wsOpen, 50)).toFixed(2)],
      ['  of which snapshot + render', ms(pct(gap, 50)), ms(pct(gap, 90)), ''],
    ]),
  );
}

if (import.meta.url === `file://${process.argv[1]}`) await webBenchmarks();
