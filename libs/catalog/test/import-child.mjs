// Runs one import in its own process so a test can kill -9 it anywhere (uses the built library).
// Prints each progress step as "<section> <done>/<total>" so the test can pick its moment.
import { importCatalog } from '../dist/index.js';

const [catalogDir, ...from] = process.argv.slice(2);
await importCatalog(catalogDir, from, (p) => process.stdout.write(`${p.section} ${p.done}/${p.total}\n`));
process.stdout.write('done\n');
