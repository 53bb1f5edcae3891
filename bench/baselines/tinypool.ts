/** Raw Tinypool (a Piscina fork): the same measurement as Piscina's. */
import Tinypool from 'tinypool';
import type { StepProgress } from '../lib/common.js';
import { measurePool } from './thread-pool.js';

export const NAME = 'Tinypool (raw)';

export function run(module: URL, threads: number, n: number, payload: (i: number) => unknown, progress: StepProgress, label: string) {
  const pool = new Tinypool({ filename: module.href, minThreads: threads, maxThreads: threads, idleTimeout: Number.POSITIVE_INFINITY });
  return measurePool({ run: (p) => pool.run(p), destroy: () => pool.destroy() }, threads, n, payload, progress, label);
}
