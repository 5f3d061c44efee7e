import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('.', import.meta.url));

// Tests import sibling libraries from source, so a test run never depends on a stale dist/.
// Child processes (the CLI, the simulator) still run compiled JS: that is what ships.
export default defineConfig({
  resolve: {
    alias: [
      { find: /^@kiln\/esphome-sim$/, replacement: `${root}tools/esphome-sim/src/index.ts` },
      { find: /^@kiln\/([a-z-]+)$/, replacement: `${root}libs/$1/src/index.ts` },
      { find: /^@kiln\/([a-z-]+)\/([a-z-]+)$/, replacement: `${root}libs/$1/src/$2/index.ts` },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
