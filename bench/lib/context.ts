/** What every scenario gets (the database, the options, progress, the rows it appends), and how a row is made from rounds. */
import type { BenchDatabase, StatementStat } from './database.js';
import type { Progress } from './progress.js';
import type { Row } from './common.js';
import type { BenchOptions } from '../options.js';
import { describeCpu, type CpuSample } from './cpu.js';
import { fromRounds } from './rounds.js';

export interface BenchContext {
  db: BenchDatabase;
  opts: BenchOptions;
  progress: Progress;
  rows: Row[];
  /** Filled by the first CPU scenario's calibration, read by the others and the report. */
  calibration?: { nsPerRound: number; rounds1: number; rounds10: number };
  /** The best main-thread Rhythm configuration of scenario 1, reused by scenario 6. */
  bestMain?: { concurrency: number; batchSize: number };
}

/** One measurement of one system, in the shape every scenario reports. */
export interface Run {
  rate: number;
  seconds: number;
  /** Tasks verified done. */
  done: number;
  /** Every task done exactly once (as far as this system lets the bench check). */
  once: boolean;
  cpu?: CpuSample;
  statements?: StatementStat[];
  notes?: string[];
  extra?: Record<string, unknown>;
}

/**
 * A table row from a contender's rounds: the median rate, every round's rate, done = the
 * fewest tasks any round verified, verified only if every round was; CPU, notes and
 * statements come from the median round.
 */
export function rowOf(results: Run[], row: Omit<Row, 'rate' | 'rounds' | 'seconds' | 'done' | 'verified'>): Row {
  const { rate, rounds, mid } = fromRounds(results);
  return {
    ...row,
    rate,
    rounds,
    seconds: mid.seconds,
    done: Math.min(...results.map((r) => r.done)),
    verified: results.every((r) => r.once),
    notes: [...(row.notes ?? []), ...(mid.notes ?? []), ...(mid.cpu ? [describeCpu(mid.cpu, row.tasks)] : [])],
    extra: {
      ...row.extra,
      ...mid.extra,
      ...(mid.cpu ? { cpu: mid.cpu } : {}),
      ...(mid.statements ? { pgStatements: mid.statements } : {}),
    },
  };
}

export function pct(x: number): string {
  return `${(x * 100).toFixed(0)}%`;
}
