import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';
import LongestFirstSequencer from './test/support/sequencer.js';

// Tests import 'rhythm' from source: vitest compiles it, and the thread pools' threads load
// the runner (and .ts task modules) through tsx, which each thread registers itself (see
// src/threads/thread-exec.ts). What still runs the build (npm test builds first) is what
// users run as shipped: the `rhythm` CLI spawned as a process, the benchmark, the .d.ts files.
const SOURCE = fileURLToPath(new URL('./src/index.ts', import.meta.url));

const CLI_FILES = 'test/cli-*.test.ts';

export default defineConfig({
  resolve: {
    alias: {
      'rhythm-pg': SOURCE,
      rhythm: SOURCE,
    },
  },
  test: {
    globalSetup: ['test/support/global-setup.ts'],
    pool: 'forks',
    // Two files at a time (vitest's default is one less than the cores: one, here). Most of
    // the suite's time is waiting (worker processes, leases, timeouts, Postgres starting),
    // not CPU: on the 2-core machine two files at once take ~130 s where one takes ~200 s.
    maxWorkers: 2,
    // Longest files first (see the sequencer), across both projects below.
    sequence: { sequencer: LongestFirstSequencer },
    env: { RHYTHM_LOG_LEVEL: process.env.RHYTHM_LOG_LEVEL ?? 'warn' },
    // expect.poll waits for events a test cannot await (a page's next refresh, a process's
    // next poll): its 1 s default is too short on a loaded 2-core machine. A bound, not a timing.
    expect: { poll: { timeout: 10_000 } },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: { name: 'cli', include: [CLI_FILES] },
      },
      {
        extends: true,
        // Re-importing the library into a fresh process for each file cost ~1 s a file (about
        // a third of the short files' time); these files leave no state behind that another
        // depends on (each makes its own database, and stops what it starts), so one process
        // runs several of them.
        test: { name: 'lib', include: ['test/**/*.test.ts'], exclude: [CLI_FILES], isolate: false },
      },
    ],
  },
});
