import { mergeConfig } from 'vitest/config';
import shared from '../../vitest.shared.js';

// Each browser test drives a whole flow (several hosts, a browser, many round trips) while other projects'
// suites share the machine's two cores: the shared 30 s bound is a wall-clock threshold here, not a hang guard.
export default mergeConfig(shared, { test: { testTimeout: 120_000, hookTimeout: 60_000 } });
