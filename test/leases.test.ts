/**
 * Lease details found in review: a hand-back clears the lease token so a heartbeat already on
 * its way cannot lease the row again; a per-task lease shorter than the worker's is extended
 * in time; the same execution claimed again (after its lease expired) while this process
 * still runs the old attempt is tracked as two attempts, and only the current one counts;
 * a finished task whose outcome is slow to be written keeps its lease.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rhythm, Worker } from 'rhythm';
import { claimTasks } from '../src/sql/claim.js';
import { extendLeases } from '../src/sql/heartbeat.js';
import { releaseLeases } from '../src/sql/release.js';
import { deferred, freshRhythm, until, type TestDatabase } from './helpers.js';

describe('leases', () => {
  let db: TestDatabase;
  let r: Rhythm;

  beforeAll(async () => {
    ({ db, r } = await freshRhythm());
    // Recovery of expired leases, for the tests of leases that must not expire.
    await r.startInternalWorker({ tickMs: 50 });
  });
  afterAll(async () => {
    await r?.shutdown();
    await db?.drop();
  });

  it('a heartbeat after a hand-back does not lease the row again', async () => {
    const id = await r.enqueue('lease-release', {}, { queue: 'lease-release' });
    const [t] = await claimTasks(r.pool, r.names, 'lease-release', ['lease-release'], 1, 'w', 60_000);
    expect(t!.id).toBe(id);
    expect(await releaseLeases(r.pool, r.names, [id], [t!.leaseToken])).toBe(1);
    expect([...(await extendLeases(r.pool, r.names, [id], [t!.leaseToken], 60_000))]).toEqual([]);
    const row = await r.pool.query(`SELECT claimed_until, lease_token, attempts FROM ${r.names.workQueue} WHERE execution_id = $1`, [id]);
    expect(row.rows[0]).toEqual({ claimed_until: null, lease_token: null, attempts: 0 });
    expect((await r.get(id))!.status).toBe('queued');
    await r.cancel(id);
  });

  it('timeoutMs counts from the start of the attempt, not from the claim (time queued for a thread)', async () => {
    const w = new Worker(r, { queue: 'timeout-queued', threads: 1 });
    w.task('busy', new URL('./fixtures/busy.js', import.meta.url));
    const running = w.start();
    try {
      // Six 300 ms tasks on one thread: the last waits 1.5 s for it, three times its timeout.
      const ids = await r.enqueueMany(
        Array.from({ length: 6 }, () => ({
          name: 'busy',
          payload: { ms: 300 },
          options: { queue: 'timeout-queued', timeoutMs: 500, maxAttempts: 1 },
        })),
      );
      for (const id of ids) {
        const e = await r.wait(id, { timeoutMs: 15_000 });
        expect(e.status, JSON.stringify(e.error)).toBe('completed');
      }
    } finally {
      await w.stop();
      await running;
    }
  });

  it("a per-task lease shorter than the worker's is extended before it expires", async () => {
    const w = new Worker(r, { queue: 'lease-short', visibilityTimeoutMs: 60_000 });
    w.task('slow', async () => {
      await new Promise((res) => setTimeout(res, 2_500));
      return 'done';
    });
    const running = w.start();
    try {
      // A 1 s lease on a worker that would otherwise extend every 20 s: without an early
      // extension the internal worker recovers it after 1 s and the attempt is lost.
      const id = await r.enqueue('slow', {}, { queue: 'lease-short', visibilityTimeoutMs: 1_000 });
      const e = await r.wait(id, { timeoutMs: 15_000 });
      expect(e.status).toBe('completed');
      expect(e.attempts).toBe(1);
      expect(e.result).toBe('done');
    } finally {
      await w.stop();
      await running;
    }
  });

  it('a finished task whose outcome cannot be written yet keeps its lease: it is not recovered and run again', async () => {
    // The worker's own Rhythm has one settle connection, held here: its outcome waits.
    const w = await Rhythm.init({ databaseUrl: db.url, poolSize: 1 });
    let runs = 0;
    const ran = deferred();
    const worker = new Worker(w, { queue: 'lease-settling', visibilityTimeoutMs: 1_000 });
    worker.task('quick', () => {
      runs++;
      ran.resolve();
      return 'done';
    });
    const blocker = await w.pool.connect();
    let released = false;
    const running = worker.start();
    try {
      const id = await r.enqueue('quick', {}, { queue: 'lease-settling' });
      await ran.promise;
      // Heartbeats go on extending the lease well past its first 1 s, while the outcome waits.
      await until(
        'the lease to be extended past 2.5 s after the claim',
        async () => {
          const res = await r.pool.query(
            `SELECT claimed_until - claimed_at > interval '2.5 seconds' AS extended FROM ${r.names.workQueue} WHERE execution_id = $1`,
            [id],
          );
          return res.rows[0]?.extended === true;
        },
        15_000,
        50,
      );
      expect((await r.get(id))!.status).toBe('running');
      blocker.release();
      released = true;
      const e = await r.wait(id, { timeoutMs: 15_000 });
      expect(e).toMatchObject({ status: 'completed', attempts: 1, result: 'done' });
      expect(runs).toBe(1);
    } finally {
      if (!released) blocker.release();
      await w.shutdown();
      await running;
    }
  });
});
