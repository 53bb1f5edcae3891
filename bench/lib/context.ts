/** What every scenario gets: the database, the options, progress, and the rows it appends. */
import type { BenchDatabase } from './database.js';
import type { Progress } from './progress.js';
import type { Row } from './common.js';
import type { BenchOptions } from '../options.js';

export interface BenchContext {
  db: BenchDatabase;
  opts: BenchOptions;
  progress: Progress;
  rows: Row[];
  /** Filled by scenario 3's calibration, read by the report. */
  calibration?: { nsPerRound: number; rounds1: number; rounds10: number };
  /** The best main-thread Rhythm configuration of scenario 1, reused by scenario 6. */
  bestMain?: { concurrency: number; batchSize: number };
}

/** Runs fn `repeat` times and keeps the result with the highest rate. */
export async function bestOf<T extends { rate: number }>(repeat: number, fn: () => Promise<T>): Promise<T> {
  let best: T | undefined;
  for (let i = 0; i < repeat; i++) {
    const r = await fn();
    if (!best || r.rate > best.rate) best = r;
  }
  return best!;
}

export function pct(x: number): string {
  return `${(x * 100).toFixed(0)}%`;
}
