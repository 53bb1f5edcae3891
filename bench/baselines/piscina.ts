/** Raw Piscina: the thread-pool limit for one run() per task. */
import { Piscina } from 'piscina';
import type { StepProgress } from '../lib/common.js';
import { measurePool } from './thread-pool.js';

export const NAME = 'Piscina (raw)';

export function run(
  module: URL,
  threads: number,
  n: number,
  payload: (i: number) => unknown,
  progress: StepProgress,
  label: string,
  onResult?: (result: unknown) => void,
) {
  const pool = new Piscina({ filename: module.href, minThreads: threads, maxThreads: threads, idleTimeout: Number.POSITIVE_INFINITY });
  return measurePool({ run: (p) => pool.run(p), destroy: () => pool.destroy() }, threads, n, payload, progress, label, onResult);
}
