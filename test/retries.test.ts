/**
 * Retries: a failed attempt goes back to the scheduled queue with exponential backoff (base
 * 20 ms, cap 1 s here, jittered to 50-100%), until maxAttempts; then the execution is
 * `failed` with the last error's name, message and stack. NonRetryableError fails at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NonRetryableError, Rhythm, Worker } from 'rhythm';
import { count, freshRhythm, until, type TestDatabase } from './helpers.js';

const Q = 'retries';
const BASE_MS = 20;
const MAX_MS = 1_000;
let db: TestDatabase;
let r: Rhythm;
let running: Promise<void>;
/** Start time of every attempt, per execution id. */
const attemptsSeen = new Map<string, { attempt: number; at: number }[]>();

class FlakyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlakyError';
  }
}

beforeAll(async () => {
  ({ db, r } = await freshRhythm({ retryBackoff: { baseMs: BASE_MS, maxMs: MAX_MS } }));
  await r.startInternalWorker({ tickMs: 25 });
  const w = new Worker(r, { queue: Q });
  w.task('always-fails', async (payload: { tag: string }, ctx) => {
    record(ctx.id, ctx.attempt);
    throw new FlakyError(`attempt ${ctx.attempt} of ${payload.tag} failed`);
  });
  w.task('fails-until', async (payload: { okOn: number }, ctx) => {
    record(ctx.id, ctx.attempt);
    if (ctx.attempt < payload.okOn) throw new FlakyError(`not yet (attempt ${ctx.attempt})`);
    return { okOn: ctx.attempt };
  });
  w.task('non-retryable', async (_payload, ctx) => {
    record(ctx.id, ctx.attempt);
    throw new NonRetryableError('this input can never work');
  });
  running = w.start();
  // Warm up every statement of the retry path (settle, promote, claim) on this database, so
  // first-use costs do not land in the measured gaps.
  const warm = await r.enqueue('fails-until', { okOn: 2 }, { queue: Q, maxAttempts: 2 });
  expect((await r.wait(warm, { timeoutMs: 10_000 })).status).toBe('completed');
});
afterAll(async () => {
  await r?.shutdown();
  await running;
  await db?.drop();
});

function record(id: string, attempt: number): void {
  const list = attemptsSeen.get(id) ?? [];
  list.push({ attempt, at: performance.now() });
  attemptsSeen.set(id, list);
}

describe('retries', () => {
  it('retries with growing backoff until maxAttempts, then fails with the error stored', async () => {
    const id = await r.enqueue('always-fails', { tag: 'job-1' }, { queue: Q, maxAttempts: 6 });
    const e = await r.wait(id, { timeoutMs: 15_000 });

    expect(e.status).toBe('failed');
    expect(e.attempts).toBe(6);
    expect(e.maxAttempts).toBe(6);
    expect(e.result).toBeNull();
    expect(e.error?.name).toBe('FlakyError');
    expect(e.error?.message).toBe('attempt 6 of job-1 failed');
    expect(e.error?.stack).toMatch(/^FlakyError: attempt 6 of job-1 failed\n\s+at /);
    expect(e.error?.stack).toContain('retries.test.ts');
    expect(e.finishedAt).toBeInstanceOf(Date);

    const seen = attemptsSeen.get(id)!;
    expect(seen.map((s) => s.attempt)).toEqual([1, 2, 3, 4, 5, 6]);
    const gaps = seen.slice(1).map((s, i) => s.at - seen[i]!.at);
    // Attempt k+1 cannot start before the backoff after attempt k: base * 2^(k-1), jittered
    // down to at most half (1 ms of slack for clock rounding).
    for (const [i, gap] of gaps.entries()) expect(gap).toBeGreaterThanOrEqual(Math.min(MAX_MS, BASE_MS * 2 ** i) * 0.5 - 1);
    // That the delay grows (doubling) is checked on the stored run_at in a later test: gaps
    // measured here carry the machine's scheduling noise.

    // Nothing is left behind in the queues.
    expect(await count(r, r.names.workQueue, 'execution_id = $1', [id])).toBe(0);
    expect(await count(r, r.names.scheduledQueue, 'execution_id = $1', [id])).toBe(0);
  });

  it('uses the default of 3 attempts', async () => {
    const id = await r.enqueue('always-fails', { tag: 'default' }, { queue: Q });
    const e = await r.wait(id, { timeoutMs: 10_000 });
    expect(e).toMatchObject({ status: 'failed', attempts: 3, maxAttempts: 3 });
    expect(e.error?.message).toBe('attempt 3 of default failed');
  });

  it('maxAttempts 1 means no retry', async () => {
    const id = await r.enqueue('always-fails', { tag: 'once' }, { queue: Q, maxAttempts: 1 });
    const e = await r.wait(id, { timeoutMs: 10_000 });
    expect(e).toMatchObject({ status: 'failed', attempts: 1 });
    expect(attemptsSeen.get(id)).toHaveLength(1);
  });

  it('a task that succeeds on a retry is completed with its result', async () => {
    const id = await r.enqueue('fails-until', { okOn: 3 }, { queue: Q, maxAttempts: 4 });
    const e = await r.wait(id, { timeoutMs: 10_000 });
    expect(e).toMatchObject({ status: 'completed', attempts: 3, result: { okOn: 3 } });
    expect(attemptsSeen.get(id)!.map((s) => s.attempt)).toEqual([1, 2, 3]);
  });

  it('between attempts the execution waits in the scheduled queue with the last error; the delay doubles up to maxMs', async () => {
    // Large delays make the stored run_at exact to check; the test promotes each retry itself
    // (run_at moved to now, then one internal-worker pass) instead of waiting for it.
    // A schema of its own: the file's other internal worker must not promote these rows.
    const slow = await Rhythm.init({ databaseUrl: db.url, schema: 'slow_retries', retryBackoff: { baseMs: 10_000, maxMs: 25_000 } });
    const internal = await slow.startInternalWorker({ tickMs: 3_600_000 });
    const w = new Worker(slow, { queue: 'slow-retries' });
    w.task('fails', async (_p, ctx) => {
      throw new FlakyError(`try ${ctx.attempt}`);
    });
    const started = w.start();
    try {
      const id = await slow.enqueue('fails', {}, { queue: 'slow-retries', maxAttempts: 4 });
      // Backoff after attempt k: base * 2^(k-1) capped at max, times 50-100% jitter. run_at is
      // measured from the attempt's start, so allow a little for the attempt itself.
      const ranges = [
        [5_000, 10_000],
        [10_000, 20_000],
        [12_500, 25_000], // 40 s uncapped: the cap applies
      ];
      for (let k = 1; k <= 3; k++) {
        // No event marks "retry scheduled": poll, bounded.
        const e = (await until(`retry ${k} to be scheduled`, async () => {
          const x = await slow.get(id);
          return x!.status === 'scheduled' && x!.attempts === k ? x : null;
        }))!;
        expect(e.finishedAt).toBeNull();
        expect(e.error).toMatchObject({ name: 'FlakyError', message: `try ${k}` });
        const delay = e.runAt.getTime() - e.startedAt!.getTime();
        expect(delay).toBeGreaterThanOrEqual(ranges[k - 1]![0]!);
        expect(delay).toBeLessThanOrEqual(ranges[k - 1]![1]! + 2_000);
        expect(await count(slow, slow.names.scheduledQueue, 'execution_id = $1', [id])).toBe(1);
        expect(await count(slow, slow.names.workQueue, 'execution_id = $1', [id])).toBe(0);

        await slow.pool.query(`UPDATE ${slow.names.scheduledQueue} SET run_at = now() WHERE execution_id = $1`, [id]);
        expect((await internal.tick()).promoted).toBe(1);
      }
      const e = await slow.wait(id, { timeoutMs: 10_000 });
      expect(e).toMatchObject({ status: 'failed', attempts: 4 });
      expect(e.error).toMatchObject({ name: 'FlakyError', message: 'try 4' });
    } finally {
      await slow.shutdown();
      await started;
    }
  });
});

describe('NonRetryableError', () => {
  it('fails the execution on the first attempt whatever maxAttempts says', async () => {
    const id = await r.enqueue('non-retryable', {}, { queue: Q, maxAttempts: 5 });
    const e = await r.wait(id, { timeoutMs: 10_000 });
    expect(e).toMatchObject({ status: 'failed', attempts: 1 });
    expect(e.error).toMatchObject({ name: 'NonRetryableError', message: 'this input can never work' });
    expect(e.error?.stack).toContain('retries.test.ts');
    expect(attemptsSeen.get(id)).toHaveLength(1);
  });
});
