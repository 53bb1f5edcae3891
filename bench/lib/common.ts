/** Shared bits of the benchmark: paths, clocks, result rows, loggers. */
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { pino, type Logger } from 'pino';
import { packageUrl } from '../../src/package-root.js';

/** Repository root, from bench/lib/ and from dist/bench/lib/ alike. */
export const ROOT = packageUrl('./');
export const TASKS_DIR = new URL('dist/tasks/', ROOT);
export const NOOP_MODULE = new URL('noop.js', TASKS_DIR);
export const SHA_MODULE = new URL('sha256-chain.js', TASKS_DIR);
export const SHA_TIMED_MODULE = new URL('sha256-chain-timed.js', TASKS_DIR);
export const CHILD_SCRIPT = fileURLToPath(new URL('dist/bench/child/worker-process.js', ROOT));
export const DEFAULT_RESULTS_DIR = fileURLToPath(new URL('bench/results/', ROOT));

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Quiet loggers: the bench prints its own progress and table. */
export function benchLogger(): Logger {
  return pino({ name: 'rhythm', level: process.env.RHYTHM_BENCH_LOG_LEVEL ?? 'warn' }, pino.destination(2));
}
export const silentGraphileLogFactory = () => () => undefined;

export type SystemKind = 'rhythm' | 'peer' | 'baseline';

export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** One line of the result table. */
export interface Row {
  /** Group the ratio is taken within, e.g. "1", "3a", "4". */
  group: string;
  scenario: string;
  system: string;
  kind: SystemKind;
  /** The row the others in its group are compared with. */
  reference?: boolean;
  config: string;
  tasks: number;
  seconds?: number;
  /** Tasks per second: the median of `rounds` when the row was measured in rounds. */
  rate?: number;
  /** The rate of each interleaved round, in round order (see lib/rounds.ts). */
  rounds?: number[];
  /** rate / reference rate: the median of per-round ratios (latency rows: p50 / reference p50). */
  ratio?: number;
  /** Lowest and highest per-round ratio. */
  ratioSpread?: [number, number];
  /** Latency in milliseconds. */
  latency?: Percentiles & { what: string };
  /** [latency ms, fraction of tasks at or below] points for the CDF chart. */
  cdf?: [number, number][];
  /** Verified in the database (or by the pool): tasks that completed exactly once. */
  done?: number;
  /** Every task done exactly once, where the bench could check it. */
  verified?: boolean;
  notes?: string[];
  /** Other configurations tried in a sweep, with their rates. */
  sweep?: { config: string; rate: number }[];
  extra?: Record<string, unknown>;
}

/** Progress reporting handed to every step. */
export interface StepProgress {
  /** (Re)starts the bar for a sub-step with this many units. */
  begin(label: string, total: number): void;
  update(value: number): void;
}

export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function schemaSuffix(): string {
  return `${process.pid.toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

/**
 * Sends n items in chunks (built before the clock starts), `parallel` chunks in flight at
 * once; returns the seconds from the first send to the last acknowledgement.
 */
export async function sendChunks<T>(
  n: number,
  chunk: number,
  parallel: number,
  make: (i: number) => T,
  send: (items: T[]) => Promise<unknown>,
  progress?: StepProgress,
): Promise<number> {
  const chunks: T[][] = [];
  for (let i = 0; i < n; i += chunk) {
    const items: T[] = [];
    for (let j = i; j < Math.min(n, i + chunk); j++) items.push(make(j));
    chunks.push(items);
  }
  let next = 0;
  let sent = 0;
  const t0 = epochMs();
  await Promise.all(
    Array.from({ length: Math.min(parallel, chunks.length) }, async () => {
      while (next < chunks.length) {
        const items = chunks[next++]!;
        await send(items);
        sent += items.length;
        progress?.update(sent);
      }
    }),
  );
  return (epochMs() - t0) / 1000;
}
