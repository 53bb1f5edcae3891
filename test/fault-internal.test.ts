/**
 * The internal worker, safe to run everywhere at once:
 * - several instances ticking concurrently promote each due task once and recover each
 *   expired lease once (exact sums of what each pass reports, and Postgres' own record of
 *   every status change);
 * - several worker processes running startInternalWorker with a very short tick: every
 *   delayed task runs exactly once;
 * - startInternalWorker twice on one Rhythm is a clear error (the first keeps running);
 * - pruning deletes settled history older than the retention, in batches, and nothing else.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rhythm, RhythmError, Worker } from 'rhythm';
import { InternalWorker } from '../src/internal/internal-worker.js';
import { claimTasks } from '../src/sql/claim.js';
import { createMigratedTestDatabase, type TestDatabaseHandle } from './support/db.js';
import { installProbes, spawnWorker } from './fixtures/fault/harness.js';

describe('the internal worker in several processes at once', () => {
  let db: TestDatabaseHandle;
  let r: Rhythm;
  const others: Rhythm[] = [];

  beforeAll(async () => {
    db = await createMigratedTestDatabase('rhythm_fault_internal');
    r = await Rhythm.init({ databaseUrl: db.url, retryBackoff: { baseMs: 0, maxMs: 0 } });
    await installProbes(r.pool, r.names);
    // Each instance has its own connection pool: as concurrent as separate processes.
    for (let i = 0; i < 4; i++)
      others.push(await Rhythm.init({ databaseUrl: db.url, autoMigrate: false, retryBackoff: { baseMs: 0, maxMs: 0 } }));
  });
  afterAll(async () => {
    await Promise.all(others.map((o) => o.shutdown()));
    await r?.shutdown();
    await db?.drop();
  });

  const transitions = async (ids: string[], from: string, to: string) =>
    (
      await r.pool.query<{ id: string; n: number }>(
        `SELECT execution_id::text AS id, count(*)::int AS n FROM public.fault_transitions
         WHERE old_status = $2 AND new_status = $3 AND execution_id = ANY($1::bigint[]) GROUP BY 1`,
        [ids, from, to],
      )
    ).rows;

  it('concurrent passes promote each due task once and recover each expired lease once', async () => {
    // 1,000 delayed tasks made due now, and 600 claimed tasks whose leases have expired.
    const due = await r.enqueueMany(
      Array.from({ length: 1_000 }, (_, i) => ({ name: 'iw', payload: { i }, options: { queue: 'iw-promote', delayMs: 3_600_000 } })),
    );
    await r.pool.query(`UPDATE ${r.names.scheduledQueue} SET run_at = now() - interval '1 second' WHERE execution_id = ANY($1::bigint[])`, [
      due,
    ]);
    const held = await r.enqueueMany(
      Array.from({ length: 600 }, (_, i) => ({ name: 'iw', payload: { i }, options: { queue: 'iw-recover' } })),
    );
    const claimed = await claimTasks(r.pool, r.names, 'iw-recover', ['iw'], 600, 'dead-worker', 60_000);
    expect(claimed).toHaveLength(600);
    await r.pool.query(`UPDATE ${r.names.workQueue} SET claimed_until = now() - interval '1 second' WHERE claimed_by = 'dead-worker'`);

    // Four internal workers, small batches so they interleave; each pass driven by tick().
    const iws = others.map((o) => new InternalWorker(o.pool, o.names, o.backoff, o.log, { batchSize: 50, retentionMs: 0 }));
    const passes = await Promise.all(iws.map((iw) => iw.tick()));
    const promoted = passes.reduce((s, p) => s + p.promoted, 0);
    const recovered = passes.reduce((s, p) => s + p.recovered, 0);
    console.log(
      `[fault-internal] concurrent passes: promoted ${passes.map((p) => p.promoted).join('+')}, recovered ${passes.map((p) => p.recovered).join('+')}`,
    );
    expect(promoted).toBe(1_000);
    expect(recovered).toBe(600);

    // Each promoted once: one scheduled -> queued change each, one work_queue row each.
    const promotions = await transitions(due, 'scheduled', 'queued');
    expect(promotions.length).toBe(1_000);
    expect(promotions.filter((row) => row.n !== 1)).toEqual([]);
    const ready = await r.pool.query(
      `SELECT count(*)::int AS n FROM ${r.names.workQueue} WHERE execution_id = ANY($1::bigint[]) AND claimed_until IS NULL`,
      [due],
    );
    expect(ready.rows[0].n).toBe(1_000);
    // Each recovered once: the attempt counted, failed with "lease expired", retry scheduled.
    const recoveries = await transitions(held, 'queued', 'scheduled');
    expect(recoveries.length).toBe(600);
    expect(recoveries.filter((row) => row.n !== 1)).toEqual([]);
    const states = await r.pool.query(
      `SELECT status, attempts, error->>'name' AS error, count(*)::int AS n FROM ${r.names.executions} WHERE id = ANY($1::bigint[]) GROUP BY 1, 2, 3`,
      [held],
    );
    expect(states.rows).toEqual([{ status: 'scheduled', attempts: 1, error: 'LeaseExpiredError', n: 600 }]);

    // A second concurrent round promotes the 600 retries (no backoff here) once each, and
    // finds nothing left to recover.
    const again = await Promise.all(iws.map((iw) => iw.tick()));
    expect(again.reduce((s, p) => s + p.promoted, 0)).toBe(600);
    expect(again.reduce((s, p) => s + p.recovered, 0)).toBe(0);
    expect((await transitions(held, 'scheduled', 'queued')).filter((row) => row.n !== 1)).toHaveLength(0);
  });

  it('several worker processes each running the internal worker (20 ms tick): every delayed task runs exactly once', {
    timeout: 60_000,
  }, async () => {
    const procs = Array.from({ length: 3 }, (_, i) =>
      spawnWorker({
        databaseUrl: db.url,
        name: `p${i}`,
        internalWorker: { tickMs: 20, batchSize: 25 },
        worker: { queue: 'iw-run', concurrency: 50 },
        tasks: ['record'],
      }),
    );
    try {
      await Promise.all(procs.map((p) => p.waitFor((m) => m.evt === 'ready', 'ready')));
      const ids = await r.enqueueMany(
        Array.from({ length: 600 }, (_, i) => ({
          name: 'record',
          payload: { i },
          options: { queue: 'iw-run', delayMs: 200 + (i % 6) * 100 },
        })),
      );
      const done = await Promise.all(ids.map((id) => r.wait(id, { timeoutMs: 30_000 })));
      expect(done.filter((e) => e.status !== 'completed')).toEqual([]);
      const runs = await r.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM public.fault_runs WHERE execution_id = ANY($1::bigint[]) GROUP BY execution_id`,
        [ids],
      );
      expect(runs.rows.length).toBe(600);
      expect(runs.rows.filter((row) => row.n !== 1)).toEqual([]);
      const promotions = await transitions(ids, 'scheduled', 'queued');
      expect(promotions.length).toBe(600);
      expect(promotions.filter((row) => row.n !== 1)).toEqual([]);
      // No pass failed in any process (a double promotion would be a primary-key violation).
      for (const p of procs)
        expect(p.lines.filter((l) => typeof l.msg === 'string' && /internal worker pass failed/.test(l.msg))).toEqual([]);
      for (const p of procs) expect(p.child.exitCode).toBeNull();
    } finally {
      await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    }
  });

  it('startInternalWorker twice on one Rhythm is a clear error; the first keeps running', async () => {
    const own = await Rhythm.init({ databaseUrl: db.url, autoMigrate: false });
    try {
      await own.startInternalWorker({ tickMs: 50 });
      const second = own.startInternalWorker({ tickMs: 50 });
      await expect(second).rejects.toBeInstanceOf(RhythmError);
      await expect(second).rejects.toThrow(/internal worker is already running/);
      const w = new Worker(own, { queue: 'iw-twice' });
      w.task('later', () => 'ran');
      const running = w.start();
      try {
        const id = await own.enqueue('later', null, { queue: 'iw-twice', delayMs: 100 });
        expect(await own.wait(id, { timeoutMs: 10_000 })).toMatchObject({ status: 'completed', result: 'ran' });
      } finally {
        await w.stop();
        await running;
      }
    } finally {
      await own.shutdown();
    }
  });

  it('pruning deletes settled history older than the retention, in batches, and nothing else', async () => {
    const q = 'iw-prune';
    const ids = await r.enqueueMany(Array.from({ length: 1_400 }, (_, i) => ({ name: 'p', payload: { i }, options: { queue: q } })));
    const old = ids.slice(0, 1_200); // > 2 prune batches of 500
    const recent = ids.slice(1_200, 1_300);
    const unsettled = ids.slice(1_300); // still queued, created "long ago"
    const statuses = ['completed', 'failed', 'cancelled'];
    await r.pool.query(`DELETE FROM ${r.names.workQueue} WHERE execution_id = ANY($1::bigint[])`, [[...old, ...recent]]);
    await r.pool.query(
      `UPDATE ${r.names.executions} SET status = ($2::text[])[1 + id % 3], finished_at = now() - interval '2 hours'
       WHERE id = ANY($1::bigint[])`,
      [old, statuses],
    );
    await r.pool.query(
      `UPDATE ${r.names.executions} SET status = 'completed', finished_at = now() - interval '10 minutes' WHERE id = ANY($1::bigint[])`,
      [recent],
    );
    await r.pool.query(`UPDATE ${r.names.executions} SET created_at = now() - interval '1 day' WHERE id = ANY($1::bigint[])`, [unsettled]);

    // Three instances prune at once with a one-hour retention (failed executions too).
    const iws = others
      .slice(0, 3)
      .map((o) => new InternalWorker(o.pool, o.names, o.backoff, o.log, { retentionMs: 3_600_000, failedRetentionMs: 3_600_000 }));
    const passes = await Promise.all(iws.map((iw) => iw.tick()));
    expect(passes.reduce((s, p) => s + p.pruned, 0)).toBe(1_200);
    const left = await r.pool.query<{ id: string }>(`SELECT id::text FROM ${r.names.executions} WHERE queue = $1 ORDER BY id`, [q]);
    expect(left.rows.map((row) => row.id)).toEqual([...recent, ...unsettled]);
    // Pruned executions are simply gone.
    expect(await r.get(old[0]!)).toBeNull();
    // A later pass within pruneIntervalMs does not prune again (nothing would be left anyway).
    expect((await iws[0]!.tick()).pruned).toBe(0);
  });
});
