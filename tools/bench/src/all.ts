// `npm run bench`: every benchmark, each printing its figures next to its baseline.
import { catalogBenchmarks } from './catalog.js';
import { firmwareBenchmarks } from './firmware.js';
import { gatewayBenchmarks } from './gateway-fanout.js';
import { idleRss } from './idle-rss.js';
import { logStoreAppend } from './logstore-append.js';
import { memorySplit } from './memory-split.js';
import { webBenchmarks } from './web.js';
import { remoteTransfer } from './remote-transfer.js';

const idleOk = await idleRss();
console.log();
const memoryOk = await memorySplit();
console.log();
const logOk = await logStoreAppend();
console.log();
const firmwareOk = await firmwareBenchmarks();
await gatewayBenchmarks();
console.log();
const catalogOk = await catalogBenchmarks();
console.log();
await webBenchmarks();
console.log();
await remoteTransfer();
process.exitCode = idleOk && logOk && firmwareOk && memoryOk && catalogOk ? 0 : 1;
