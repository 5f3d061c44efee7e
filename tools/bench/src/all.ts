// `npm run bench`: every benchmark, each printing its figures next to its baseline.
import { firmwareBenchmarks } from './firmware.js';
import { gatewayFanout } from './gateway-fanout.js';
import { idleRss } from './idle-rss.js';
import { logStoreAppend } from './logstore-append.js';

await idleRss();
console.log();
const logOk = await logStoreAppend();
console.log();
const firmwareOk = await firmwareBenchmarks();
await gatewayFanout();
process.exitCode = logOk && firmwareOk ? 0 : 1;
