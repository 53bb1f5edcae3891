import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

// Tests import 'rhythm' from source: vitest compiles it, and the thread pools' threads load
// the runner (and .ts task modules) through tsx, which each thread registers itself (see
// src/threads/thread-exec.ts). What still runs the build (npm test builds first) is what
// users run as shipped: the `rhythm` CLI spawned as a process, the benchmark, the .d.ts files.
const SOURCE = fileURLToPath(new URL('./src/index.ts', import.meta.url));

export default defineConfig({
  resolve: {
    alias: {
      'rhythm-pg': SOURCE,
      rhythm: SOURCE,
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
