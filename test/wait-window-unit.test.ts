/**
 * The read window of wait(): a lone wait is re-read as soon as its execution is announced
 * done, while a stream of completions gathers into large reads.
 */
import { describe, expect, it } from 'vitest';
import { readWindowMs } from '../src/wait.js';

describe('readWindowMs', () => {
  it('after a read of one id (a lone wait), the next read need not wait', () => {
    expect(readWindowMs(0)).toBe(0);
    expect(readWindowMs(1)).toBeLessThan(1);
  });

  it('grows with the size of the last read, up to the full window at a hundred ids', () => {
    expect(readWindowMs(10)).toBeGreaterThan(readWindowMs(1));
    expect(readWindowMs(50)).toBeGreaterThan(readWindowMs(10));
    expect(readWindowMs(100)).toBe(20);
    expect(readWindowMs(1_000)).toBe(20);
  });
});
