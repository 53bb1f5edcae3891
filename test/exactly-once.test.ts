/**
 * 5,000 tasks on one queue served by two workers in two Rhythm instances (two pools, as two
 * processes would have): every task completes exactly once. The handlers count their runs
 * in a table of their own; the history must agree.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { Rhythm, Worker } from 'rhythm';
import { count, deferred, fixture, freshRhythm, until, type TestDatabase } from './helpers.js';

const N = 5_000;
/** The thread-pool variant: default options, so threads hold queued batches and idle ones take waiting tasks. */
const N_THREADS = 5_000;
let db: TestDatabase;
let producer: Rhythm;

beforeAll(async () => {
  ({ db, r: producer } = await freshRhythm());
});
afterAll(async () => {
  await producer?.shutdown();
  await db?.drop();
});

/**
 * Waits until every execution of the queue has settled. There is no single event for
 * thousands of executions, and wait() costs one read per id (seconds at this size on two
 * busy cores), so this polls one count, bounded; a sample is also awaited with wait().
 */
async function allSettled(queue: string, ids: string[], timeoutMs = 50_000): Promise<void> {
  await until(
    `${ids.length} executions of ${queue} to settle`,
    async () =>
      (await count(producer, producer.names.executions, "queue = $1 AND status IN ('completed', 'failed', 'cancelled')", [queue])) ===
      ids.length,
    timeoutMs,
    50,
  );
  const sample = ids.filter((_, i) => i % 97 === 0);
  const done = await Promise.all(sample.map((id) => producer.wait(id, { timeoutMs: 10_000 })));
  for (const e of done) expect(e).toMatchObject({ status: 'completed', result: { n: (e.payload as { n: number }).n } });
}

/** Checks the counts table and the history after all the tasks of `queue` finished. */
async function expectEachRanOnce(table: string, queue: string, ids: string[]): Promise<Map<string, number>> {
  const N = ids.length;
  const counts = await producer.pool.query(
    `SELECT count(*)::int AS rows, count(DISTINCT n)::int AS distinct_n, min(n)::int AS min_n, max(n)::int AS max_n,
            sum(runs)::int AS runs, max(runs)::int AS max_runs FROM ${table}`,
  );
  expect(counts.rows[0]).toEqual({ rows: N, distinct_n: N, min_n: 0, max_n: N - 1, runs: N, max_runs: 1 });

  // Each task's row names the execution that ran it: the same one the producer enqueued.
  const mismatched = await producer.pool.query(
    `SELECT count(*)::int AS n FROM ${table} c JOIN unnest($1::bigint[]) WITH ORDINALITY AS i(id, pos) ON i.pos - 1 = c.n
     WHERE c.execution_id <> i.id`,
    [ids],
  );
  expect(mismatched.rows[0].n).toBe(0);

  const history = await producer.pool.query(
    `SELECT status, attempts, count(*)::int AS n FROM ${producer.names.executions} WHERE queue = $1 GROUP BY 1, 2`,
    [queue],
  );
  expect(history.rows).toEqual([{ status: 'completed', attempts: 1, n: N }]);
  expect(await count(producer, producer.names.workQueue, 'queue = $1', [queue])).toBe(0);
  expect(await count(producer, producer.names.scheduledQueue)).toBe(0);

  const byWorker = await producer.pool.query(`SELECT worker, count(*)::int AS n FROM ${table} GROUP BY 1`);
  return new Map(byWorker.rows.map((row) => [row.worker as string, row.n as number]));
}

describe('exactly once across two workers of one queue', () => {
  it(`main-thread handlers: ${N} tasks, each run and completed once`, async () => {
    await producer.pool.query(
      'CREATE TABLE main_counts (n int PRIMARY KEY, execution_id bigint NOT NULL, worker text NOT NULL, runs int NOT NULL)',
    );
    const instances: { r: Rhythm; app: pg.Pool; worker: Worker; running?: Promise<void> }[] = [];
    let handled = 0;
    const allHandled = deferred();
    try {
      for (const name of ['A', 'B']) {
        const r = await Rhythm.init({ databaseUrl: db.url });
        const app = new pg.Pool({ connectionString: db.url, max: 5 });
        const worker = new Worker(r, { queue: 'bulk', concurrency: 50 });
        worker.task('count-once', async (payload: { n: number }, ctx) => {
          await app.query(
            `INSERT INTO main_counts (n, execution_id, worker, runs) VALUES ($1, $2, $3, 1)
             ON CONFLICT (n) DO UPDATE SET runs = main_counts.runs + 1`,
            [payload.n, ctx.id, name],
          );
          if (++handled === N) allHandled.resolve();
          return { n: payload.n };
        });
        instances.push({ r, app, worker });
      }
      for (const i of instances) i.running = i.worker.start();

      const ids = await producer.enqueueMany(
        Array.from({ length: N }, (_, n) => ({ name: 'count-once', payload: { n }, options: { queue: 'bulk' } })),
      );
      expect(new Set(ids).size).toBe(N);
      await allHandled.promise; // every handler has run (at least) once...
      await allSettled('bulk', ids); // ...and every outcome is written

      const byWorker = await expectEachRanOnce('main_counts', 'bulk', ids);
      // Both instances took part.
      expect(byWorker.get('A')).toBeGreaterThan(0);
      expect(byWorker.get('B')).toBeGreaterThan(0);
    } finally {
      for (const i of instances) await i.r.shutdown();
      await Promise.all(instances.map((i) => i.running));
      for (const i of instances) await i.app.end();
    }
  });

  it(`thread-pool modules: ${N_THREADS} tasks over two pools, each run and completed once`, { timeout: 180_000 }, async () => {
    await producer.pool.query(
      'CREATE TABLE thread_counts (n int PRIMARY KEY, execution_id bigint NOT NULL, worker text NOT NULL, runs int NOT NULL)',
    );
    const instances: { r: Rhythm; worker: Worker; running?: Promise<void> }[] = [];
    try {
      for (let k = 0; k < 2; k++) {
        const r = await Rhythm.init({ databaseUrl: db.url });
        const worker = new Worker(r, { queue: 'bulk-threads', threads: 2 });
        worker.task('count-once', fixture('count-once.js'));
        instances.push({ r, worker });
      }
      for (const i of instances) i.running = i.worker.start();

      const ids = await producer.enqueueMany(
        Array.from({ length: N_THREADS }, (_, n) => ({
          name: 'count-once',
          payload: { n, db: db.url, table: 'thread_counts' },
          options: { queue: 'bulk-threads' },
        })),
      );
      // Each task inserts its own row from its thread: slower than the main-thread variant.
      await allSettled('bulk-threads', ids, 120_000);

      const byThread = await expectEachRanOnce('thread_counts', 'bulk-threads', ids);
      // More than one thread took part.
      expect(byThread.size).toBeGreaterThanOrEqual(2);
    } finally {
      for (const i of instances) await i.r.shutdown();
      await Promise.all(instances.map((i) => i.running));
    }
  });
});
