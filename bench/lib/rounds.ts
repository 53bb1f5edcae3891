/**
 * Interleaved rounds. On a shared machine the speed drifts by tens of percent within minutes,
 * so comparing system A measured three times, then system B three times, mostly measures the
 * drift. Instead every contender runs once per round, the order reversed every other round
 * (A, B, then B, A, then A, B, ...): neighbours in a round see nearly the same machine, and no
 * contender always runs first (after the previous scenario's clean-up) or always second
 * (after the other's, e.g. its autovacuum). A row's rate is the median of its rounds;
 * a ratio between two rows is the median of the per-round ratios (A's round i over B's round
 * i), printed with its spread (min-max over the rounds).
 *
 * Sweeps (which configuration of a system is fastest) run before the rounds, one run per
 * configuration; only the best configuration takes part in the rounds.
 */
import type { Progress } from './progress.js';

export interface Measurement {
  rate: number;
}

export interface Contender<T extends Measurement> {
  label: string;
  run: () => Promise<T>;
}

/** Runs `repeat` rounds of every contender (odd rounds in reverse); result[i][round] is contender i's. */
export async function interleave<T extends Measurement>(
  repeat: number,
  contenders: Contender<T>[],
  progress: Progress,
  title: string,
): Promise<T[][]> {
  const out: T[][] = contenders.map(() => []);
  for (let round = 0; round < repeat; round++) {
    const order = [...contenders.entries()];
    if (round % 2 === 1) order.reverse();
    for (const [i, c] of order) {
      progress.next(`${title} · ${c.label}${repeat > 1 ? ` · round ${round + 1}/${repeat}` : ''}`);
      out[i]!.push(await c.run());
    }
  }
  return out;
}

export interface SweepResult<C> {
  best: C;
  /** Every configuration tried with its rate (empty when there was nothing to choose). */
  sweep: { config: string; rate: number }[];
}

/** One run per configuration, the fastest kept; a single configuration is not run at all. */
export async function sweepConfigs<C, T extends Measurement>(
  configs: C[],
  describe: (c: C) => string,
  run: (c: C) => Promise<T>,
  progress: Progress,
  title: string,
): Promise<SweepResult<C>> {
  if (configs.length === 1) return { best: configs[0]!, sweep: [] };
  const sweep: { config: string; rate: number }[] = [];
  let best: { c: C; rate: number } | undefined;
  for (const c of configs) {
    progress.next(`${title} · sweep: ${describe(c)}`);
    const res = await run(c);
    sweep.push({ config: describe(c), rate: res.rate });
    if (!best || res.rate > best.rate) best = { c, rate: res.rate };
  }
  return { best: best!.c, sweep };
}

/** Progress steps of a sweep (see sweepConfigs). */
export function sweepSteps(configs: number): number {
  return configs > 1 ? configs : 0;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Index of the round at the (lower) median: its details (CPU, notes) stand for the row. */
export function medianIndex(xs: number[]): number {
  const order = xs.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]);
  return order[(order.length - 1) >> 1]![1];
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** How many rounds the figure is taken over. */
  n: number;
}

export function spread(xs: number[]): Spread {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length };
}

/** A row's rounds and the median round's measurement. */
export function fromRounds<T extends Measurement>(results: T[]): { rate: number; rounds: number[]; mid: T } {
  const rounds = results.map((r) => r.rate);
  return { rate: median(rounds), rounds, mid: results[medianIndex(rounds)]! };
}

/**
 * a / b: the median of per-round ratios when both were measured in the same interleaved
 * rounds, else the ratio of the two (median) rates.
 */
export function ratioOf(a: { rate?: number; rounds?: number[] }, b: { rate?: number; rounds?: number[] }): Spread | undefined {
  if (a.rounds && b.rounds && a.rounds.length === b.rounds.length && a.rounds.length > 0 && b.rounds.every((x) => x > 0)) {
    return spread(a.rounds.map((x, i) => x / b.rounds![i]!));
  }
  if (a.rate === undefined || !b.rate) return undefined;
  const x = a.rate / b.rate;
  return { median: x, min: x, max: x, n: 1 };
}

/** "1.52x (1.41-1.60x)" or, as a percentage, "93.1% (91.0-95.2%)"; no spread for one round. */
export function fmtSpread(s: Spread, as: 'x' | '%'): string {
  const f = as === 'x' ? (v: number) => v.toFixed(2) : (v: number) => (v * 100).toFixed(1);
  const unit = as === 'x' ? 'x' : '%';
  return s.n > 1 ? `${f(s.median)}${unit} (${f(s.min)}-${f(s.max)}${unit}, ${s.n} rounds)` : `${f(s.median)}${unit}`;
}
