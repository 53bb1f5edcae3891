/**
 * A worker claims ahead of its handlers by its measured finish rate, but never past its
 * bounds: at most `concurrency` handlers at once, at most batchSize tasks per claim, at most
 * eight claims' worth held (claimed and not yet written, concurrency more with main-thread
 * handlers), and never more payload bytes than maxHeldBytes. The database is the judge of
 * what is held: claimed rows of the work queue, read while the worker drains.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker, type Rhythm } from 'rhythm';
import { fixture, freshRhythm, type TestDatabase } from './helpers.js';

let db: TestDatabase;
let r: Rhythm;

beforeAll(async () => {
  ({ db, r } = await freshRhythm());
});
afterAll(async () => {
  await r?.shutdown();
  await db?.drop();
});

/** Samples the claimed rows of a queue (count and payload bytes) until `done` settles; returns the largest seen. */
async function watchHeld(queue: string, done: Promise<unknown>): Promise<{ tasks: number; bytes: number; samples: number }> {
  let finished = false;
  void done.finally(() => (finished = true));
  const most = { tasks: 0, bytes: 0, samples: 0 };
  while (!finished) {
    const res = await r.pool.query(
      `SELECT count(*)::int AS tasks, coalesce(sum(payload_bytes), 0)::int AS bytes FROM ${r.names.workQueue}
       WHERE queue = $1 AND claimed_until IS NOT NULL`,
      [queue],
    );
    most.tasks = Math.max(most.tasks, res.rows[0].tasks);
    most.bytes = Math.max(most.bytes, res.rows[0].bytes);
    most.samples++;
  }
  return most;
}

/** Tasks taken by one claim statement share its claim time (started_at in the history). */
async function largestClaim(queue: string): Promise<number> {
  const res = await r.pool.query(
    `SELECT max(n)::int AS n FROM (SELECT count(*) AS n FROM ${r.names.executions} WHERE queue = $1 GROUP BY started_at) c`,
    [queue],
  );
  return res.rows[0].n;
}

describe('claiming ahead', () => {
  it('main thread: handlers at once <= concurrency, a claim <= batchSize, held <= 8 * batchSize + concurrency', async () => {
    const queue = 'ahead-main';
    const concurrency = 3;
    const batchSize = 4;
    let running = 0;
    let mostRunning = 0;
    const worker = new Worker(r, { queue, concurrency, batchSize });
    worker.task('io', async () => {
      mostRunning = Math.max(mostRunning, ++running);
      await new Promise((res) => setTimeout(res, 2));
      running--;
      return null;
    });
    const started = worker.start();
    try {
      const ids = await r.enqueueMany(Array.from({ length: 400 }, (_, i) => ({ name: 'io', payload: { i }, options: { queue } })));
      const all = Promise.all(ids.map((id) => r.wait(id, { timeoutMs: 60_000 })));
      const held = await watchHeld(queue, all);
      for (const e of await all) expect(e).toMatchObject({ status: 'completed', attempts: 1 });
      expect(held.samples).toBeGreaterThan(0);
      expect(held.tasks).toBeLessThanOrEqual(8 * batchSize + concurrency);
      expect(mostRunning).toBe(concurrency);
      expect(await largestClaim(queue)).toBeLessThanOrEqual(batchSize);
    } finally {
      await worker.stop();
      await started;
    }
  });

  it('threads: the byte budget holds while the threads are kept a few batches ahead', async () => {
    const queue = 'ahead-bytes';
    const payload = 'x'.repeat(20_000);
    const maxHeldBytes = 100_000;
    const worker = new Worker(r, { queue, threads: 2, maxHeldBytes });
    worker.task('echo', fixture('echo.js'));
    const started = worker.start();
    try {
      const ids = await r.enqueueMany(
        Array.from({ length: 60 }, (_, i) => ({ name: 'echo', payload: { i, payload }, options: { queue } })),
      );
      const all = Promise.all(ids.map((id) => r.wait(id, { timeoutMs: 60_000 })));
      const held = await watchHeld(queue, all);
      for (const e of await all) expect(e).toMatchObject({ status: 'completed', attempts: 1 });
      expect(held.bytes).toBeLessThanOrEqual(maxHeldBytes);
      // Some were held at once: the budget, not a claim of one, was the limit.
      expect(held.tasks).toBeGreaterThan(1);
    } finally {
      await worker.stop();
      await started;
    }
  });
});
