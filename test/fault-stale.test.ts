/**
 * Fencing: a worker whose lease expired and was taken over (a "stale" worker) can change
 * nothing. Every claim carries a fresh lease token; completions, failures, heartbeats and
 * releases must present the current one. First at SQL level, step by step; then end to end,
 * with a worker process whose event loop is blocked past its lease.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rhythm, Worker } from 'rhythm';
import { claimTasks } from '../src/sql/claim.js';
import { settleAttempts } from '../src/sql/settle.js';
import { extendLeases } from '../src/sql/heartbeat.js';
import { releaseLeases } from '../src/sql/release.js';
import { recoverExpired } from '../src/sql/recover.js';
import { promoteDue } from '../src/sql/promote.js';
import { createMigratedTestDatabase, type TestDatabaseHandle } from './support/db.js';
import { installProbes, spawnWorker } from './fixtures/fault/harness.js';

const NO_BACKOFF = { baseMs: 0, maxMs: 0 };

describe('a stale worker cannot complete', () => {
  let db: TestDatabaseHandle;
  let r: Rhythm;

  beforeAll(async () => {
    db = await createMigratedTestDatabase('rhythm_fault_stale');
    r = await Rhythm.init({ databaseUrl: db.url, retryBackoff: { baseMs: 20, maxMs: 100 } });
    await installProbes(r.pool, r.names);
  });
  afterAll(async () => {
    await r?.shutdown();
    await db?.drop();
  });

  const completions = async (id: string) =>
    (await r.pool.query(`SELECT result FROM public.fault_transitions WHERE execution_id = $1 AND new_status = 'completed'`, [id])).rows;

  it("SQL level: after expiry and takeover, the old token's heartbeat, completion, failure and release are all refused", async () => {
    const { pool, names } = r;
    const id = await r.enqueue('stale-sql', { n: 1 }, { queue: 'stale-sql', maxAttempts: 3 });
    const [a] = await claimTasks(pool, names, 'stale-sql', ['stale-sql'], 1, 'worker-A', 60_000);
    expect(a).toMatchObject({ id, attempt: 1 });

    // A stops heartbeating; its lease runs out (made to expire now, rather than waited for).
    await pool.query(`UPDATE ${names.workQueue} SET claimed_until = now() - interval '1 second' WHERE execution_id = $1`, [id]);
    const recovered = await recoverExpired(pool, names, 100, NO_BACKOFF);
    expect(recovered).toEqual([expect.objectContaining({ id, claimedBy: 'worker-A', status: 'scheduled' })]);
    expect(await promoteDue(pool, names, 100)).toBe(1);
    const [b] = await claimTasks(pool, names, 'stale-sql', ['stale-sql'], 1, 'worker-B', 60_000);
    expect(b).toMatchObject({ id, attempt: 2 });
    expect(b!.leaseToken).not.toBe(a!.leaseToken);

    // A wakes up while B runs: nothing it presents is accepted.
    expect([...(await extendLeases(pool, names, [id], [a!.leaseToken], 60_000))]).toEqual([]);
    expect([...(await extendLeases(pool, names, [id], [b!.leaseToken], 60_000))]).toEqual([b!.leaseToken]);
    const settle = (token: string, outcome: 'completed' | 'failed', by: string) =>
      settleAttempts(
        pool,
        names,
        [
          {
            id,
            leaseToken: token,
            outcome,
            resultJson: outcome === 'completed' ? JSON.stringify({ by }) : null,
            errorJson: outcome === 'failed' ? JSON.stringify({ name: 'Error', message: by }) : null,
          },
        ],
        NO_BACKOFF,
        [],
      );
    expect(await settle(a!.leaseToken, 'completed', 'A')).toEqual([]);
    expect(await settle(a!.leaseToken, 'failed', 'A')).toEqual([]);
    expect(await releaseLeases(pool, names, [id], [a!.leaseToken])).toBe(0);
    expect(await r.get(id)).toMatchObject({ status: 'running', attempts: 2, result: null });

    // B completes; A's late completion after that is refused too, and the first result is kept.
    expect(await settle(b!.leaseToken, 'completed', 'B')).toEqual([{ id, status: 'completed' }]);
    expect(await settle(a!.leaseToken, 'completed', 'A')).toEqual([]);
    expect(await settle(b!.leaseToken, 'completed', 'B-again')).toEqual([]); // not even the winner twice
    expect(await r.get(id)).toMatchObject({ status: 'completed', attempts: 2, result: { by: 'B' } });
    const sched = await pool.query(`SELECT count(*)::int AS n FROM ${names.scheduledQueue} WHERE execution_id = $1`, [id]);
    expect(sched.rows[0].n).toBe(0); // A's refused failure scheduled no retry
    expect(await completions(id)).toEqual([{ result: { by: 'B' } }]);
  });

  it('end to end: a worker process blocked past its lease finishes late; its completion is discarded, the first result is kept', {
    timeout: 60_000,
  }, async () => {
    // Worker A blocks its event loop for 4 s holding a 1 s lease: no heartbeat can run.
    const a = spawnWorker(
      { databaseUrl: db.url, name: 'A', worker: { queue: 'stale', visibilityTimeoutMs: 1_000 }, tasks: ['block'] },
      { logLevel: 'info' },
    );
    let b: Worker | undefined;
    let bRunning: Promise<void> | undefined;
    try {
      await a.waitFor((m) => m.evt === 'ready', 'A ready');
      const id = await r.enqueue('block', { ms: 4_000 }, { queue: 'stale', maxAttempts: 3 });
      await a.waitFor((m) => m.evt === 'started' && m.id === id, 'A to start the task');
      const t0 = Date.now();

      // Now worker B and the internal worker (lease recovery) come up in this process.
      b = new Worker(r, { queue: 'stale', visibilityTimeoutMs: 5_000 });
      b.task('block', (_p: unknown, ctx) => ({ by: 'B', attempt: ctx.attempt }));
      bRunning = b.start();
      const internal = await r.startInternalWorker({ tickMs: 100 });
      try {
        const e = await r.wait(id, { timeoutMs: 20_000 });
        const takeoverMs = Date.now() - t0;
        expect(e).toMatchObject({ status: 'completed', attempts: 2, result: { by: 'B', attempt: 2 } });

        // A finishes late and tries to complete: refused and logged.
        await a.waitFor((m) => m.evt === 'unblocked' && m.id === id, 'A to finish', 20_000);
        const discarded = await a.waitFor(
          (m) => typeof m.msg === 'string' && m.msg.startsWith('outcomes discarded') && Array.isArray(m.ids) && m.ids.includes(id),
          "A's completion to be discarded",
          20_000,
        );
        expect(discarded.level).toBe(30);
        expect(await r.get(id)).toMatchObject({ status: 'completed', attempts: 2, result: { by: 'B', attempt: 2 } });
        expect(await completions(id)).toEqual([{ result: { by: 'B', attempt: 2 } }]);
        expect(a.child.exitCode).toBeNull();
        console.log(
          `[fault-stale] blocked worker's task taken over and completed by B ${takeoverMs} ms after A started it (lease 1000 ms); A's late completion discarded`,
        );
      } finally {
        await internal.stop();
      }
    } finally {
      await a.kill('SIGKILL');
      await b?.stop({ timeoutMs: 1_000 });
      await bRunning;
    }
  });
});
