/**
 * Lease details found in review: a hand-back clears the lease token so a heartbeat already on
 * its way cannot lease the row again; a per-task lease shorter than the worker's is extended
 * in time; the same execution claimed again (after its lease expired) while this process
 * still runs the old attempt is tracked as two attempts, and only the current one counts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker, type Rhythm } from 'rhythm';
import { claimTasks } from '../dist/src/sql/claim.js';
import { extendLeases } from '../dist/src/sql/heartbeat.js';
import { releaseLeases } from '../dist/src/sql/release.js';
import { freshRhythm, type TestDatabase } from './helpers.js';

describe('leases', () => {
  let db: TestDatabase;
  let r: Rhythm;

  beforeAll(async () => {
    ({ db, r } = await freshRhythm());
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
        Array.from({ length: 6 }, () => ({ name: 'busy', payload: { ms: 300 }, options: { queue: 'timeout-queued', timeoutMs: 500, maxAttempts: 1 } })),
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

  it('a per-task lease shorter than the worker\'s is extended before it expires', async () => {
    await r.startInternalWorker({ tickMs: 50 });
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
});
