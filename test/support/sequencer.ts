/**
 * Starts the longest test files first, so the two workers finish together instead of one
 * running a 40 s file alone at the end. vitest does this by itself only from the durations
 * it cached on an earlier run in the same checkout; a fresh clone (CI) has none, and vitest
 * then orders by file size, which puts short-but-slow files (the bench smoke, the scratch
 * app) last. The table holds rough seconds measured on the 2-core machine; a file's cached
 * duration, when there is one, wins over it.
 */
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const ESTIMATED_SECONDS: Record<string, number> = {
  'test/bench-smoke.test.ts': 40,
  'test/dashboard-browser.test.ts': 33,
  'test/cli-usage.test.ts': 30,
  'test/enqueue-limits.test.ts': 28,
  'test/cli-admin.test.ts': 25,
  'test/scratch-app.test.ts': 22,
  'test/cli-status.test.ts': 18,
  'test/cli-workflows.test.ts': 17,
  'test/fault-pg-restart.test.ts': 12,
  'test/queue-controls-processes.test.ts': 12,
  'test/embedded-postgres.test.ts': 13,
  'test/cli-schedules.test.ts': 11,
  'test/wait-scale.test.ts': 11,
  'test/exactly-once.test.ts': 10,
  'test/cli-patterns.test.ts': 10,
  'test/schedules.test.ts': 9,
  'test/fault-network.test.ts': 9,
  'test/workflow-faults.test.ts': 9,
  'test/fault-sigterm.test.ts': 8,
  'test/wait.test.ts': 8,
  'test/cli-unreachable.test.ts': 8,
  'test/fault-cancel.test.ts': 8,
  'test/secrets.test.ts': 8,
  'test/leases.test.ts': 8,
  'test/fault-threads.test.ts': 7,
  'test/flow-fuzz.test.ts': 6,
  'test/thread-pipeline.test.ts': 6,
  'test/thread-failures.test.ts': 6,
  'test/cli-flow-folder.test.ts': 6,
  'test/cli-scale.test.ts': 6,
  'test/fault-internal.test.ts': 6,
};

export default class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = this.ctx.config.root;
    const seconds = (spec: TestSpecification): number => {
      const file = relative(root, spec.moduleId).replaceAll('\\', '/');
      const cached = this.ctx.cache.getFileTestResults(`${spec.project.name}:${file}`);
      if (cached && !cached.failed) return cached.duration / 1000;
      // A file that failed last time runs first, as vitest's own order has it.
      if (cached?.failed) return Number.POSITIVE_INFINITY;
      return ESTIMATED_SECONDS[file] ?? 0;
    };
    const base = await super.sort(files);
    // Stable: files of equal weight keep vitest's order (larger files first).
    return base
      .map((spec, i) => ({ spec, i, s: seconds(spec) }))
      .sort((a, b) => b.s - a.s || a.i - b.i)
      .map(({ spec }) => spec);
  }
}
