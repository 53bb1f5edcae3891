/**
 * Crash recovery: a worker process is SIGKILLed in the middle of a few thousand tasks while a
 * second worker process stays alive. The killed worker's leases expire, the internal worker
 * (running in both processes) recovers them, the survivor runs them again, and in the end
 * every task is completed exactly once (at-least-once execution, exactly-once completion).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rhythm } from 'rhythm';
import { createMigratedTestDatabase, type TestDatabaseHandle } from './support/db.js';
import { installProbes, pollUntil, spawnWorker } from './fixtures/fault/harness.js';

const TASKS = 3_000;
const LEASE_MS = 1_500;
const TICK_MS = 200;
/** Lease expiry + one internal-worker tick + retry backoff + a re-run, with room for a slow CI box. */
const RECOVERY_BOUND_MS = 10_000;

describe('SIGKILL of a worker process mid-run', () => {
  let db: TestDatabaseHandle;
  let r: Rhythm;

  beforeAll(async () => {
    db = await createMigratedTestDatabase('rhythm_fault_kill');
    r = await Rhythm.init({ databaseUrl: db.url });
    await installProbes(r.pool, r.names);
  });
  afterAll(async () => {
    await r?.shutdown();
    await db?.drop();
  });

  it("loses nothing: every task completes exactly once, and the killed worker's tasks are recovered within the lease + one tick", async () => {
    const common = {
      databaseUrl: db.url,
      retryBackoff: { baseMs: 50, maxMs: 200 },
      internalWorker: { tickMs: TICK_MS },
      tasks: ['record'],
      progressEvery: 100,
    };
    const worker = (workerId: string) => ({ queue: 'kill', concurrency: 50, visibilityTimeoutMs: LEASE_MS, workerId });
    // Each process' connections carry its name, so we can tell when the victim's are gone.
    const url = (app: string) => `${db.url}?application_name=${app}`;
    const victim = spawnWorker({ ...common, databaseUrl: url('victim'), name: 'victim', worker: worker('victim') });
    const survivor = spawnWorker({ ...common, databaseUrl: url('survivor'), name: 'survivor', worker: worker('survivor') });
    try {
      await Promise.all([
        victim.waitFor((m) => m.evt === 'ready', 'victim ready'),
        survivor.waitFor((m) => m.evt === 'ready', 'survivor ready'),
      ]);
      const ids = await r.enqueueMany(
        Array.from({ length: TASKS }, (_, i) => ({ name: 'record', payload: { i, ms: 5 }, options: { queue: 'kill', maxAttempts: 5 } })),
      );

      // Kill the victim while it is busy: after it has run a few hundred tasks itself.
      await victim.waitFor((m) => m.evt === 'progress' && m.runs >= 300, 'victim progress');
      victim.child.kill('SIGKILL');
      const { signal } = await victim.exited;
      const killedAt = Date.now();
      expect(signal).toBe('SIGKILL');

      // A statement the victim sent just before it died still runs (and commits) on the
      // server: wait until its sessions are gone, then read what it held. No event exists for
      // this, so poll pg_stat_activity.
      await pollUntil(
        async () =>
          (await r.pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'victim'`)).rows[0].n === 0,
        "the victim's database sessions to end",
        10_000,
        20,
      );
      // What the victim held when it died: frozen until its leases expire.
      const held = (
        await r.pool.query<{ id: string }>(`SELECT execution_id AS id FROM ${r.names.workQueue} WHERE claimed_by = 'victim'`)
      ).rows.map((row) => row.id);
      expect(held.length).toBeGreaterThan(0);
      const remainingAtKill = (
        await r.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM ${r.names.executions} WHERE id = ANY($1::bigint[]) AND status <> 'completed'`,
          [ids],
        )
      ).rows[0]!.n;

      // Recovery: every task the victim held completes (run again by the survivor).
      const recovered = await Promise.all(held.map((id) => r.wait(id, { timeoutMs: 30_000 })));
      const recoveryMs = Math.max(...recovered.map((e) => e.finishedAt!.getTime())) - killedAt;
      const all = await Promise.all(ids.map((id) => r.wait(id, { timeoutMs: 60_000 })));
      const drainedMs = Date.now() - killedAt;

      // None lost: every execution completed.
      expect(all.filter((e) => e.status !== 'completed').map((e) => [e.id, e.status, e.error])).toEqual([]);
      for (const e of recovered) {
        expect(e.status).toBe('completed');
        expect(e.attempts).toBeGreaterThanOrEqual(2); // the victim's attempt was counted, then recovered
        expect(e.result).toMatchObject({ by: 'survivor' });
      }

      // Exactly-once completion, from Postgres' own record of every status change.
      const completions = await r.pool.query<{ id: string; n: number }>(
        `SELECT execution_id::text AS id, count(*)::int AS n FROM public.fault_transitions
         WHERE new_status = 'completed' AND execution_id = ANY($1::bigint[]) GROUP BY 1`,
        [ids],
      );
      expect(completions.rows.length).toBe(TASKS);
      expect(completions.rows.filter((row) => row.n !== 1)).toEqual([]);

      // The recovered attempts went through the recovery path: settled as a failed attempt with
      // "lease expired" and rescheduled (a claim does not write the history row, so the
      // transition is queued -> scheduled).
      const expired = await r.pool.query<{ id: string }>(
        `SELECT DISTINCT execution_id::text AS id FROM public.fault_transitions
         WHERE new_status = 'scheduled' AND error->>'name' = 'LeaseExpiredError'`,
      );
      const expiredSet = new Set(expired.rows.map((row) => row.id));
      expect(held.filter((id) => !expiredSet.has(id))).toEqual([]);

      // At-least-once execution: every task's handler ran, and the stored result is that of a
      // run which really happened (same attempt, same process). Only a task whose lease expired
      // (the victim's) can have run twice.
      const runs = await r.pool.query<{ id: string; runs: number; pids: number[] }>(
        `SELECT execution_id::text AS id, count(*)::int AS runs, array_agg(DISTINCT pid) AS pids FROM public.fault_runs GROUP BY 1`,
      );
      expect(runs.rows.length).toBe(TASKS);
      const twice = runs.rows.filter((row) => row.runs > 1).map((row) => row.id);
      expect(twice.filter((id) => !expiredSet.has(id))).toEqual([]);
      const mismatched = await r.pool.query(
        `SELECT e.id FROM ${r.names.executions} e
         WHERE e.id = ANY($1::bigint[]) AND NOT EXISTS (
           SELECT 1 FROM public.fault_runs f
           WHERE f.execution_id = e.id AND f.attempt = (e.result->>'attempt')::int AND f.pid = (e.result->>'pid')::int)`,
        [ids],
      );
      expect(mismatched.rows).toEqual([]);
      const pids = new Set(runs.rows.flatMap((row) => row.pids));
      expect(pids.has(victim.pid!)).toBe(true);
      expect(pids.has(survivor.pid!)).toBe(true);

      // No zombie: nothing is left running or claimed.
      const left = await r.pool.query(`SELECT count(*)::int AS n FROM ${r.names.workQueue}`);
      expect(left.rows[0].n).toBe(0);

      console.log(
        `[fault-sigkill] victim held ${held.length} tasks at SIGKILL (${remainingAtKill} of ${TASKS} unfinished); ` +
          `recovered in ${recoveryMs} ms (lease ${LEASE_MS} ms, tick ${TICK_MS} ms); all done ${drainedMs} ms after the kill; ` +
          `${twice.length} tasks ran twice (the victim ran them but died before its completion was written)`,
      );
      expect(recoveryMs).toBeLessThan(RECOVERY_BOUND_MS);
    } finally {
      await Promise.all([victim.kill('SIGKILL'), survivor.kill('SIGKILL')]);
    }
  });
});
