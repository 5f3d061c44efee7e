// `npm run bench`: every benchmark, each printing its figures next to its baseline.
import { idleRss } from './idle-rss.js';
import { logStoreAppend } from './logstore-append.js';

await idleRss();
console.log();
process.exitCode = (await logStoreAppend()) ? 0 : 1;
