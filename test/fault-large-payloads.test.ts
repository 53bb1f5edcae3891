/**
 * Large payloads cannot exhaust a worker's memory: a claim takes tasks only up to the
 * worker's byte budget (maxHeldBytes), and a payload too large for the worker to survive is
 * read only after its claim has committed, so its attempt is counted and the task ends
 * `failed` after maxAttempts instead of crashing every worker that claims it, forever (a
 * claim commits only once its last row is sent: a worker dying while receiving it used to
 * roll its own claim back, attempt uncounted).
 *
 * The worker process runs with a small V8 heap (--max-old-space-size) so that what would take
 * gigabytes in production takes megabytes here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rhythm, Worker } from 'rhythm';
import { createMigratedTestDatabase, type TestDatabaseHandle } from './support/db.js';
import { spawnWorker } from './fixtures/fault/harness.js';

const MB = 1_000_000;

describe('large payloads', () => {
  let db: TestDatabaseHandle;
  let r: Rhythm;

  beforeAll(async () => {
    db = await createMigratedTestDatabase('rhythm_fault_large');
    r = await Rhythm.init({ databaseUrl: db.url, maxPayloadBytes: 100 * MB, retryBackoff: { baseMs: 20, maxMs: 100 } });
  });
  afterAll(async () => {
    await r?.shutdown();
    await db?.drop();
  });

  it('claims stop at the byte budget: tasks of 50 KB through a 120 KB budget, at most two held at once; one larger than the budget runs alone', async () => {
    const w = await Rhythm.init({ databaseUrl: db.url });
    let held = 0;
    const seen: number[] = [];
    const worker = new Worker(w, { queue: 'budget', concurrency: 100, maxHeldBytes: 120_000 });
    worker.task('hold', async (p: { data: string }) => {
      seen.push(++held);
      await new Promise((resolve) => setTimeout(resolve, 20));
      held--;
      return p.data.length;
    });
    const running = worker.start();
    try {
      const items = Array.from({ length: 20 }, (_, i) => ({
        name: 'hold',
        payload: { data: String(i % 10).repeat(i === 7 ? 300_000 : 50_000) },
        options: { queue: 'budget' },
      }));
      const ids = await r.enqueueMany(items);
      const done = await Promise.all(ids.map((id) => r.wait(id, { timeoutMs: 20_000 })));
      expect(done.map((e) => e.status)).toEqual(ids.map(() => 'completed'));
      expect(seen).toHaveLength(20);
      expect(Math.max(...seen)).toBe(2);
      // The 300 KB one ran alone: while it was held, nothing else was.
      expect(seen[7]).toBe(1);
    } finally {
      await w.shutdown();
      await running;
    }
  });

  it('payloads too large for the worker count their attempts before the worker dies of them, and end failed', {
    timeout: 60_000,
  }, async () => {
    const ids = await r.enqueueMany(
      Array.from({ length: 5 }, (_, i) => ({
        name: 'hold',
        payload: { data: String(i).repeat(6 * MB) },
        options: { queue: 'huge', maxAttempts: 1, visibilityTimeoutMs: 1_000 },
      })),
    );
    const worker = spawnWorker(
      { databaseUrl: db.url, worker: { queue: 'huge', visibilityTimeoutMs: 1_000 }, tasks: ['hold'] },
      { nodeArgs: ['--max-old-space-size=24'] },
    );
    const exit = (await worker.exited) as { code: number | null; signal: string | null };
    expect(exit.code === 0 && exit.signal === null, 'the worker should have died of its payloads').toBe(false);
    expect(worker.stderr()).toMatch(/heap out of memory|Allocation failed/i);
    expect(
      worker.lines.some((l) => l.evt === 'holding'),
      'a handler got its payload',
    ).toBe(false);
    const { rows } = await r.pool.query(`SELECT attempts FROM ${r.names.workQueue} WHERE execution_id = ANY($1::bigint[])`, [ids]);
    expect(rows).toEqual(ids.map(() => ({ attempts: 1 })));
    const internal = await r.startInternalWorker({ tickMs: 100 });
    try {
      const done = await Promise.all(ids.map((id) => r.wait(id, { timeoutMs: 30_000 })));
      for (const e of done) expect(e).toMatchObject({ status: 'failed', attempts: 1, error: { name: 'LeaseExpiredError' } });
    } finally {
      await internal.stop();
    }
  });
});
