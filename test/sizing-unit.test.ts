/**
 * The pure arithmetic of claims and thread batches (src/dispatcher/sizing.ts), and the JSON
 * checks of payloads and progress, with plain numbers and values: no database, no threads.
 */
import { describe, expect, it } from 'vitest';
import {
  AHEAD_MAX_MS,
  AHEAD_MIN_MS,
  AHEAD_MIN_TASKS,
  MAX_BATCH,
  RATE_WINDOW_MS,
  TARGET_BATCH_MS,
  claimAhead,
  claimCount,
  nextRate,
  tasksPerBatch,
} from '../src/dispatcher/sizing.js';
import { encodeJson, MAX_JSON_DEPTH } from '../src/json.js';
import { encodeProgress } from '../src/contract/progress-value.js';
import { RhythmValidationError } from '../src/errors.js';

const need = { room: 0, ahead: 0, buffered: 0, batchSize: 500, maxHeld: 4_000, held: 0 };

describe('claim-ahead', () => {
  it('holds what finishes in two claim round trips plus a margin, at least AHEAD_MIN_MS worth and AHEAD_MIN_TASKS within AHEAD_MAX_MS', () => {
    expect(claimAhead(0, 50)).toBe(0);
    // 2 tasks/ms, fast claims: the floor of AHEAD_MIN_MS applies.
    expect(claimAhead(2, 5)).toBe(2 * AHEAD_MIN_MS);
    // Slow claims (200 ms): 2 trips + 10 ms margin.
    expect(claimAhead(2, 200)).toBe(2 * 410);
    // Tasks of milliseconds: at least AHEAD_MIN_TASKS of them...
    expect(claimAhead(0.1, 5)).toBe(AHEAD_MIN_TASKS);
    // ...unless that is more than AHEAD_MAX_MS of their work (slow tasks are not hoarded).
    expect(claimAhead(0.01, 200)).toBe(0.01 * AHEAD_MAX_MS);
  });

  it('claims room plus the ahead buffer less what is buffered, within batchSize and maxHeld', () => {
    expect(claimCount({ ...need, room: 10 })).toBe(10);
    expect(claimCount({ ...need, room: 10, ahead: 100, buffered: 40 })).toBe(70);
    expect(claimCount({ ...need, room: 10_000 })).toBe(500);
    expect(claimCount({ ...need, room: 100, maxHeld: 4_000, held: 3_950 })).toBe(50);
    expect(claimCount({ ...need, room: 100, held: 4_000 })).toBe(0);
  });

  it('claims nothing while more than half of the ahead buffer is left, or when nothing is wanted', () => {
    expect(claimCount({ ...need, room: 50, ahead: 100, buffered: 51 })).toBe(0);
    expect(claimCount({ ...need, room: 50, ahead: 100, buffered: 50 })).toBe(100);
    expect(claimCount(need)).toBe(0);
  });

  it('moves the finish rate toward the measured one, by more the longer the interval', () => {
    expect(nextRate(0, 10, RATE_WINDOW_MS)).toBeCloseTo((10 / RATE_WINDOW_MS) * (1 - Math.exp(-1)), 12);
    const short = nextRate(1, 0, 5);
    const long = nextRate(1, 0, 2_000);
    expect(short).toBeLessThan(1);
    expect(long).toBeLessThan(short);
    expect(long).toBeCloseTo(0, 3);
    // A steady rate stays put.
    expect(nextRate(0.5, 50, 100)).toBeCloseTo(0.5, 12);
  });
});

describe('thread batch size', () => {
  it('is one task until run times are known, then what fills TARGET_BATCH_MS, between 1 and MAX_BATCH', () => {
    expect(tasksPerBatch(undefined)).toBe(1);
    expect(tasksPerBatch(1)).toBe(TARGET_BATCH_MS);
    expect(tasksPerBatch(0.1)).toBe(TARGET_BATCH_MS * 10);
    expect(tasksPerBatch(0)).toBe(MAX_BATCH);
    expect(tasksPerBatch(TARGET_BATCH_MS * 3)).toBe(1);
  });
});

describe('JSON checks', () => {
  it('passes JSON values through as JSON.stringify writes them', () => {
    const v = { a: [1, 'two', null, true, { b: 2.5 }], ü: '😀' };
    expect(encodeJson(v, 'payload')).toBe(JSON.stringify(v));
    expect(encodeJson(null, 'payload')).toBe('null');
    expect(encodeJson('text', 'payload')).toBe('"text"');
  });

  it.each([
    ['a function', { a: { f: () => 1 } }, /payload\.a\.f .*function/],
    ['NaN', { n: [1, Number.NaN] }, /payload\.n\[1\] .*NaN/],
    ['Infinity', Number.POSITIVE_INFINITY, /payload .*Infinity/],
    ['a BigInt', { big: 1n }, /payload\.big .*BigInt/i],
    ['a NUL character', { s: 'a\u0000b' }, /payload\.s contains a NUL character/],
    ['a lone surrogate', { s: 'x\ud800' }, /payload\.s contains a lone UTF-16 surrogate/],
    ['undefined', undefined, /payload is undefined/],
  ])('refuses %s, naming where it is', (_what, value, message) => {
    expect(() => encodeJson(value, 'payload')).toThrow(RhythmValidationError);
    expect(() => encodeJson(value, 'payload')).toThrow(message);
  });

  it('refuses a cycle and nesting deeper than MAX_JSON_DEPTH', () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(() => encodeJson(cycle, 'payload')).toThrow(/cycl|circular/i);
    let deep: unknown = 1;
    for (let i = 0; i <= MAX_JSON_DEPTH; i++) deep = [deep];
    expect(() => encodeJson(deep, 'payload')).toThrow(/deep|nest/i);
  });

  it('progress values follow the same rules', () => {
    expect(encodeProgress({ done: 3, of: 10 })).toBe('{"done":3,"of":10}');
    expect(() => encodeProgress({ f: () => 1 })).toThrow(RhythmValidationError);
  });
});
