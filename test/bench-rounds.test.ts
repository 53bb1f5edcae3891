/**
 * The bench's interleaved rounds (bench/lib/rounds.ts): the order systems run in, medians,
 * per-round ratios and their spread. Pure functions on made-up rates: no timing is measured.
 */
import { describe, expect, it } from 'vitest';
import { fmtSpread, fromRounds, interleave, median, medianIndex, ratioOf, sweepConfigs } from '../bench/lib/rounds.js';
import type { Progress } from '../bench/lib/progress.js';

const quiet = { next: () => undefined } as unknown as Progress;

describe('bench rounds', () => {
  it('runs every contender once a round, every other round in reverse (A, B, B, A, A, B)', async () => {
    const order: string[] = [];
    const contender = (label: string, rates: number[]) => {
      let i = 0;
      return { label, run: async () => (order.push(label), { rate: rates[i++]! }) };
    };
    const res = await interleave(3, [contender('A', [10, 20, 30]), contender('B', [1, 2, 3])], quiet, 't');
    expect(order).toEqual(['A', 'B', 'B', 'A', 'A', 'B']);
    expect(res.map((r) => r.map((x) => x.rate))).toEqual([
      [10, 20, 30],
      [1, 2, 3],
    ]);
  });

  it('medians of odd and even counts, and the round that stands for the row', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(medianIndex([30, 10, 20])).toBe(2);
    const { rate, rounds, mid } = fromRounds([
      { rate: 5, tag: 'a' },
      { rate: 9, tag: 'b' },
      { rate: 7, tag: 'c' },
    ]);
    expect(rate).toBe(7);
    expect(rounds).toEqual([5, 9, 7]);
    expect(mid.tag).toBe('c');
  });

  it('a ratio is the median of per-round ratios, not the ratio of medians', () => {
    // The machine slowed down in round 2 for both: per round, A is 2x, 2x and 1x of B.
    const a = { rate: 100, rounds: [200, 100, 50] };
    const b = { rate: 50, rounds: [100, 50, 50] };
    const q = ratioOf(a, b)!;
    expect(q).toEqual({ median: 2, min: 1, max: 2, n: 3 });
    expect(fmtSpread(q, 'x')).toBe('2.00x (1.00-2.00x, 3 rounds)');
    // Rows from different rounds fall back to the ratio of their rates.
    expect(ratioOf({ rate: 90 }, { rate: 100, rounds: [100] })).toEqual({ median: 0.9, min: 0.9, max: 0.9, n: 1 });
    expect(fmtSpread(ratioOf({ rate: 90 }, { rate: 100 })!, '%')).toBe('90.0%');
    expect(ratioOf({}, { rate: 1 })).toBeUndefined();
  });

  it('a sweep keeps the fastest configuration, and skips running a single one', async () => {
    const ran: number[] = [];
    const s = await sweepConfigs(
      [1, 3, 2],
      (c) => `c${c}`,
      async (c) => (ran.push(c), { rate: c * 10 }),
      quiet,
      't',
    );
    expect(s.best).toBe(3);
    expect(s.sweep).toEqual([
      { config: 'c1', rate: 10 },
      { config: 'c3', rate: 30 },
      { config: 'c2', rate: 20 },
    ]);
    const one = await sweepConfigs([7], String, async (c) => (ran.push(c), { rate: 1 }), quiet, 't');
    expect(one).toEqual({ best: 7, sweep: [] });
    expect(ran).toEqual([1, 3, 2]);
  });
});
