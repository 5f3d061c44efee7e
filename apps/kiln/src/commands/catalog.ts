import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { catalogSettingsSchema, importCatalog, importedCatalogDir, type ImportProgress } from '@kiln/catalog';
import { loadConfig } from '@kiln/config';
import { KilnError } from '@kiln/core';

const USAGE = 'usage: kiln catalog import --from <definitions dir | monolithic file or dir | upstream .tar.gz (sdist)> [--from …] [--to DIR] [--data-dir D] [--config FILE]';

/** `kiln catalog import`: upstream catalog data → Kiln's format under the data dir (atomic swap). */
export async function catalog(argv: string[], out: (line: string) => void): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'import') throw new KilnError('invalid_args', `${USAGE} (got ${JSON.stringify(sub ?? null)})`, { field: 'subcommand', value: sub ?? null });
  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      strict: true,
      options: { from: { type: 'string', multiple: true }, to: { type: 'string' }, 'data-dir': { type: 'string' }, config: { type: 'string' } },
    }));
  } catch (err) {
    throw new KilnError('invalid_args', `${(err as Error).message}\n${USAGE}`, { argv });
  }
  if (!values.from?.length) throw new KilnError('invalid_args', `--from is required\n${USAGE}`, { field: '--from' });
  const config = await loadConfig({
    flags: values['data-dir'] ? [{ path: 'dataDir', value: values['data-dir'], flag: '--data-dir' }] : [],
    ...(values.config ? { configFile: values.config } : {}),
  });
  const target = values.to ?? importedCatalogDir(config.core.dataDir);
  const started = performance.now();
  const result = await importCatalog(target, values.from, progressPrinter());
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const counts = Object.entries(result.counts).map(([section, n]) => `${n} ${section}`).join(', ');
  out(`imported ${counts} (${(result.bodyBytes / 1e6).toFixed(1)} MB of bodies) in ${seconds} s into ${result.tree}`);
  // catalog.dir names the catalog to serve: an import elsewhere is not served while it is set.
  const served = config.section('catalog', catalogSettingsSchema).dir;
  if (served !== '' && config.resolvePath(served) !== resolve(target)) {
    out(`not served while catalog.dir is set (${served}): unset it (KILN_CATALOG__DIR= in a container) or import with --to ${served}`);
  } else {
    out('a running catalog service picks it up on restart: kiln control catalog restart');
  }
  return 0;
}

/** A bar redrawn in place on a terminal; one line per 25% step otherwise (logs stay short). */
function progressPrinter(): (p: ImportProgress) => void {
  const tty = process.stderr.isTTY === true;
  let lastStep = -1;
  return ({ section, done, total }) => {
    const fraction = total === 0 ? 1 : done / total;
    if (tty) {
      const width = 30;
      const filled = Math.round(fraction * width);
      process.stderr.write(`\r${section.padEnd(12)} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.round(fraction * 100)).padStart(3)}% ${done}/${total}`);
      if (done === total) process.stderr.write('\n');
      return;
    }
    const step = Math.floor(fraction * 4);
    if (done === 0) lastStep = -1;
    if (step !== lastStep) {
      lastStep = step;
      process.stderr.write(`${section}: ${done}/${total} (${Math.round(fraction * 100)}%)\n`);
    }
  };
}
