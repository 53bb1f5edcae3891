/**
 * Deduplication keys: the partial unique index over unfinished executions turns a race of
 * producers into one execution; 'replace' rewrites one that has not started and leaves a
 * running one alone; a finished execution frees its key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rhythm, RhythmValidationError, Worker } from 'rhythm';
import { deferred, freshRhythm, until, type TestDatabase } from './helpers.js';

describe('unique keys', () => {
  let db: TestDatabase;
  let r: Rhythm;

  beforeAll(async () => {
    ({ db, r } = await freshRhythm());
  });
  afterAll(async () => {
    await r?.shutdown();
    await db?.drop();
  });

  const withKey = async (key: string) =>
    (await r.pool.query(`SELECT id, status, payload FROM ${r.names.executions} WHERE unique_key = $1 ORDER BY id`, [key])).rows;

  it('20 concurrent producers (4 Rhythm instances x 5) with one uniqueKey make one execution', async () => {
    const producers = await Promise.all([0, 1, 2, 3].map(() => Rhythm.init({ databaseUrl: db.url, autoMigrate: false, poolSize: 5 })));
    try {
      // Warm every connection first, so the enqueues start together rather than behind connects.
      await Promise.all(producers.flatMap((p) => Array.from({ length: 5 }, () => p.pool.query('SELECT 1'))));
      const ids = await Promise.all(
        producers.flatMap((p, i) =>
          Array.from({ length: 5 }, (_, j) => p.enqueue('sync-user', { userId: 7, producer: i * 5 + j }, { uniqueKey: 'sync-user:7' })),
        ),
      );
      expect(ids).toHaveLength(20);
      expect(new Set(ids).size).toBe(1);
      const rows = await withKey('sync-user:7');
      expect(rows).toHaveLength(1);
      expect(rows[0].id).toBe(ids[0]);
      // Exactly one work_queue row too: the losers inserted nothing anywhere.
      const queued = await r.pool.query(`SELECT count(*)::int AS n FROM ${r.names.workQueue} WHERE name = 'sync-user'`);
      expect(queued.rows[0].n).toBe(1);
    } finally {
      await Promise.all(producers.map((p) => p.shutdown()));
    }
  });

  it('retry() revives an execution only while no other holds its key, and one per key at a time', async () => {
    const opts = { queue: 'retry-keyed', uniqueKey: 'rk', delayMs: 3_600_000 };
    const first = await r.enqueue('keyed', { v: 1 }, opts);
    expect(await r.cancel(first)).toBe(true);
    const second = await r.enqueue('keyed', { v: 2 }, opts);
    expect(second).not.toBe(first);
    expect(await r.cancel(second)).toBe(true);
    const holder = await r.enqueue('keyed', { v: 3 }, opts);
    // The key is held: both are skipped, as they are, instead of the statement failing.
    expect(await r.retry([first, second])).toEqual({
      retried: [],
      skipped: [
        { id: first, status: 'cancelled' },
        { id: second, status: 'cancelled' },
      ],
    });
    expect(await r.cancel(holder)).toBe(true);
    // The key is free: the newest of the two gets it, the other is skipped.
    expect(await r.retry([first, second])).toEqual({ retried: [second], skipped: [{ id: first, status: 'cancelled' }] });
    expect((await withKey('rk')).map((row) => row.status)).toEqual(['cancelled', 'queued', 'cancelled']);
    // A filter over the dead letters behaves the same and does not fail on the held key.
    expect((await r.retry({ queue: 'retry-keyed', status: 'cancelled' })).retried).toEqual([]);
  });

  it("a finished execution frees its key; 'keep' returns the unfinished one unchanged", async () => {
    const first = await r.enqueue('keyed', { v: 1 }, { queue: 'keyed', uniqueKey: 'k1' });
    expect(await r.enqueue('keyed', { v: 2 }, { queue: 'keyed', uniqueKey: 'k1', uniqueMode: 'keep' })).toBe(first);
    expect((await r.get(first))!.payload).toEqual({ v: 1 });
    const w = new Worker(r, { queue: 'keyed' });
    w.task('keyed', (p: { v: number }) => p.v);
    const running = w.start();
    expect((await r.wait(first, { timeoutMs: 10_000 })).result).toBe(1);
    const second = await r.enqueue('keyed', { v: 3 }, { queue: 'keyed', uniqueKey: 'k1' });
    expect(second).not.toBe(first);
    expect((await r.wait(second, { timeoutMs: 10_000 })).result).toBe(3);
    await w.stop();
    await running;
    expect((await withKey('k1')).map((row) => row.status)).toEqual(['completed', 'completed']);
  });

  it("'replace' updates the payload and run time of one not started yet (delayed or queued)", async () => {
    const delayed = await r.enqueue('digest', { items: [1] }, { queue: 'replace-q', uniqueKey: 'digest:1', delayMs: 3_600_000 });
    const again = await r.enqueue('digest', { items: [1, 2] }, { queue: 'replace-q', uniqueKey: 'digest:1', uniqueMode: 'replace' });
    expect(again).toBe(delayed);
    const e = (await r.get(delayed))!;
    expect(e.payload).toEqual({ items: [1, 2] });
    // The replacement had no delay: it is ready now, and in work_queue, not scheduled_queue.
    expect(e.status).toBe('queued');
    const where = await r.pool.query(
      `SELECT (SELECT count(*) FROM ${r.names.workQueue} WHERE execution_id = $1)::int AS ready,
              (SELECT count(*) FROM ${r.names.scheduledQueue} WHERE execution_id = $1)::int AS waiting`,
      [delayed],
    );
    expect(where.rows[0]).toEqual({ ready: 1, waiting: 0 });
    // Queued to queued: its work_queue row is replaced within the one statement.
    await r.enqueue('digest', { items: [1, 2, 3] }, { queue: 'replace-q', uniqueKey: 'digest:1', uniqueMode: 'replace', priority: 5 });
    expect((await r.get(delayed))!).toMatchObject({ status: 'queued', payload: { items: [1, 2, 3] } });
    // And back to delayed, from queued.
    await r.enqueue('digest', { items: [9] }, { queue: 'replace-q', uniqueKey: 'digest:1', uniqueMode: 'replace', delayMs: 3_600_000 });
    const back = (await r.get(delayed))!;
    expect(back).toMatchObject({ status: 'scheduled', payload: { items: [9] } });
    expect(back.runAt.getTime()).toBeGreaterThan(Date.now() + 3_500_000);
    // Delayed to delayed: its scheduled_queue row moves to the new time.
    await r.enqueue('digest', { items: [10] }, { queue: 'replace-q', uniqueKey: 'digest:1', uniqueMode: 'replace', delayMs: 7_200_000 });
    const later = await r.pool.query(`SELECT run_at FROM ${r.names.scheduledQueue} WHERE execution_id = $1`, [delayed]);
    expect(later.rows[0].run_at.getTime()).toBeGreaterThan(Date.now() + 7_100_000);
    expect((await r.get(delayed))!.payload).toEqual({ items: [10] });
    expect(await withKey('digest:1')).toHaveLength(1);
    expect(await r.cancel(delayed)).toBe(true);
  });

  it("'replace' leaves a running execution alone and returns its id", async () => {
    const started = deferred();
    const release = deferred();
    const w = new Worker(r, { queue: 'replace-running' });
    w.task('slow', async (p: { v: number }) => {
      started.resolve();
      await release.promise;
      return p.v;
    });
    const running = w.start();
    const id = await r.enqueue('slow', { v: 1 }, { queue: 'replace-running', uniqueKey: 'slow:1' });
    await started.promise;
    await until('running status', async () => (await r.get(id))!.status === 'running');
    expect(await r.enqueue('slow', { v: 2 }, { queue: 'replace-running', uniqueKey: 'slow:1', uniqueMode: 'replace' })).toBe(id);
    expect((await r.get(id))!.payload).toEqual({ v: 1 });
    release.resolve();
    expect((await r.wait(id, { timeoutMs: 10_000 })).result).toBe(1);
    await w.stop();
    await running;
    expect(await withKey('slow:1')).toHaveLength(1);
  });

  it('refuses bad unique options with an error naming them', async () => {
    await expect(r.enqueue('t', {}, { uniqueMode: 'replace' })).rejects.toThrow(/uniqueMode "replace" needs a uniqueKey/);
    await expect(r.enqueue('t', {}, { uniqueKey: 'k', uniqueMode: 'update' as never })).rejects.toThrow(
      /uniqueMode must be 'keep' or 'replace', got "update"/,
    );
    await expect(r.enqueue('t', {}, { uniqueKey: '' })).rejects.toThrow(RhythmValidationError);
    await expect(r.enqueue('t', {}, { uniqueKey: 7 as never })).rejects.toThrow(/uniqueKey must be a non-empty string/);
    await expect(r.enqueueMany([{ name: 't', payload: {}, options: { uniqueKey: 7 as never } }])).rejects.toThrow(
      /item 0: option uniqueKey must be a non-empty string/,
    );
  });
});
