/**
 * `npm run bench`: throughput, latency and scaling of Rhythm against raw baselines and peers,
 * in one run on one Postgres. See bench/README.md and `npm run bench -- --help`.
 *
 * Everything it starts (the embedded Postgres, worker processes, thread pools, connections)
 * is stopped when it ends, fails, or is interrupted.
 */
import os from 'node:os';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseOptions, HELP, type BenchOptions } from './options.js';
import { DEFAULT_RESULTS_DIR, ROOT, type Row } from './lib/common.js';
import { openBenchDatabase, type BenchDatabase } from './lib/database.js';
import { killAll } from './lib/children.js';
import { Progress } from './lib/progress.js';
import type { BenchContext } from './lib/context.js';
import { computeRatios, evaluateGoals, markdown, writeResults, type Machine, type Report } from './report.js';
import * as s1 from './scenarios/s1-noop-main.js';
import * as s2 from './scenarios/s2-noop-threads.js';
import * as s3 from './scenarios/s3-cpu.js';
import * as s4 from './scenarios/s4-latency.js';
import * as s5 from './scenarios/s5-bulk-enqueue.js';
import * as s6 from './scenarios/s6-scaling.js';
import * as s7 from './scenarios/s7-cpu-end-to-end.js';
import * as s8 from './scenarios/s8-wait-at-scale.js';
import * as s9 from './scenarios/s9-groups.js';
import * as s10 from './scenarios/s10-workflows.js';

interface Scenario {
  TITLE: string;
  steps(o: BenchOptions): number;
  run(ctx: BenchContext): Promise<void>;
}

const SCENARIOS: [number, Scenario][] = [
  [1, s1],
  [2, s2],
  [3, s3],
  [4, s4],
  [5, s5],
  [6, s6],
  [7, s7],
  [8, s8],
  [9, s9],
  [10, s10],
];

function version(pkg: string): string {
  try {
    return JSON.parse(readFileSync(fileURLToPath(new URL(`node_modules/${pkg}/package.json`, ROOT)), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

function machine(db: BenchDatabase): Machine {
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown CPU',
    cores: os.availableParallelism(),
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    postgres: db.version,
    database: db.source,
    pgSettings: db.settings,
    loadAverageAtStart: os.loadavg(),
    versions: Object.fromEntries(
      ['piscina', 'tinypool', 'graphile-worker', 'pg-boss', 'pg', 'hdr-histogram-js'].map((p) => [p, version(p)]),
    ),
  };
}

async function main(): Promise<number> {
  let opts: BenchOptions | 'help';
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  const o = opts;
  const selected = SCENARIOS.filter(([id]) => o.scenarios.has(id));
  const progress = new Progress(
    selected.reduce((a, [, s]) => a + s.steps(o), 0),
    o.progress,
  );
  const startedAt = new Date().toISOString();
  const rows: Row[] = [];
  const errors: { scenario: string; error: string }[] = [];
  let db: BenchDatabase | undefined;

  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    progress.stop();
    process.stderr.write(`\n${signal}: stopping worker processes and the database...\n`);
    void cleanup().finally(() => process.exit(130));
  };
  const cleanup = async () => {
    await killAll().catch(() => undefined);
    await db?.close().catch(() => undefined);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    progress.note(`rhythm bench${o.quick ? ' --quick' : ''}: scenarios ${[...o.scenarios].join(', ')}; starting Postgres...`);
    db = await openBenchDatabase({ url: o.databaseUrl, dataDir: o.dataDir, settings: o.pgSettings, keep: o.keep, pgStats: o.pgStats });
    const ctx: BenchContext = { db, opts: o, progress, rows };
    const m = machine(db);
    for (const [, scenario] of selected) {
      try {
        await scenario.run(ctx);
      } catch (err) {
        progress.stop();
        const message = (err as Error)?.stack ?? String(err);
        errors.push({ scenario: scenario.TITLE, error: (err as Error)?.message ?? String(err) });
        process.stderr.write(`\n${scenario.TITLE} failed: ${message}\n`);
        await killAll();
      }
    }
    progress.stop();
    progress.closeStep();
    computeRatios(rows);
    const report: Report = {
      startedAt,
      finishedAt: new Date().toISOString(),
      quick: o.quick,
      argv: process.argv.slice(2),
      machine: m,
      calibration: ctx.calibration,
      repeat: o.repeat,
      rows,
      goals: evaluateGoals(rows),
      errors,
      timings: progress.timings,
    };
    const md = markdown(report);
    const files = writeResults(o.outDir ?? DEFAULT_RESULTS_DIR, report);
    process.stdout.write(`${md}\n\nResults: ${files.json}\n         ${files.svg}\n`);
    return errors.length ? 1 : 0;
  } finally {
    progress.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!interrupted) await cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench failed: ${(err as Error)?.stack ?? err}\n`);
    process.exit(1);
  },
);
