import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

// Tests import 'rhythm' from the compiled build (npm test builds first): the threads load
// compiled task modules and the runner, exactly as they do for users.
export default defineConfig({
  resolve: {
    alias: {
      'rhythm-pg': fileURLToPath(new URL('./dist/src/index.js', import.meta.url)),
      rhythm: fileURLToPath(new URL('./dist/src/index.js', import.meta.url)),
    },
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    pool: 'forks',
    // Two files at a time (vitest's default is one less than the cores: one, here). Most of
    // the suite's time is waiting (worker processes, leases, timeouts, Postgres starting),
    // not CPU: on the 2-core machine two files at once take ~130 s where one takes ~200 s.
    maxWorkers: 2,
    env: { RHYTHM_LOG_LEVEL: process.env.RHYTHM_LOG_LEVEL ?? 'warn' },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
  },
});
