/**
 * The retry backoff shared by every loop that waits on the database (src/backoff.ts), without
 * a database or timers: the ceiling doubles per attempt up to the cap, and the delay is drawn
 * uniformly below it (full jitter), so two workers retrying together do not stay in step.
 */
import { describe, expect, it } from 'vitest';
import { DB_RETRY, retryDelayMs } from '../src/backoff.js';

/** Just under 1: the largest delay the draw can give. */
const top = () => 1 - Number.EPSILON;

describe('retryDelayMs', () => {
  it('grows the ceiling exponentially from baseMs and caps it at maxMs', () => {
    const b = { baseMs: 10, maxMs: 1_000 };
    const ceilings = [0, 1, 2, 3, 6, 7, 8, 40].map((a) => retryDelayMs(a, b, top));
    expect(ceilings).toEqual([9, 19, 39, 79, 639, 999, 999, 999]);
  });

  it('draws uniformly between 0 and the ceiling (full jitter)', () => {
    const b = { baseMs: 100, maxMs: 5_000 };
    expect(retryDelayMs(3, b, () => 0)).toBe(0);
    expect(retryDelayMs(3, b, () => 0.5)).toBe(400);
    expect(retryDelayMs(3, b, () => 0.25)).toBe(200);
  });

  it('spreads the retries of many workers failing together', () => {
    const delays = new Set(Array.from({ length: 200 }, () => retryDelayMs(5)));
    // Same attempt, 200 draws below 3,200 ms: nearly all distinct, none above the ceiling.
    expect(delays.size).toBeGreaterThan(150);
    for (const d of delays) {
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(Math.min(DB_RETRY.maxMs, DB_RETRY.baseMs * 2 ** 5));
    }
  });

  it('treats a negative attempt as the first and never overflows', () => {
    expect(retryDelayMs(-3, { baseMs: 10, maxMs: 100 }, top)).toBe(9);
    expect(Number.isFinite(retryDelayMs(1e9, DB_RETRY, top))).toBe(true);
    expect(retryDelayMs(1e9, DB_RETRY, top)).toBe(DB_RETRY.maxMs - 1);
  });

  it('a zero backoff retries at once', () => {
    expect(retryDelayMs(4, { baseMs: 0, maxMs: 0 }, top)).toBe(0);
  });
});
