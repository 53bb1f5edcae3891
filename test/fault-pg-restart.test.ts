/**
 * A Postgres restart in the middle of a run: the worker process' pool, dispatcher, completer,
 * internal worker and LISTEN connection all lose the server, then reconnect on their own.
 * Nothing is lost, nothing completes twice, and work enqueued after the restart still reaches
 * the worker by NOTIFY (its fallback poll is set far beyond the test's bounds).
 *
 * These tests run their own embedded server (on a temporary data folder) so stopping it does
 * not disturb the server shared by the other test files.
 *
 * The main test's worker process does not run the internal worker, and its handler rides out
 * the outage by retrying its own write: without promotions every task must complete on the
 * attempt that was running, which the test also checks. A separate test runs a process with
 * the internal worker through restarts.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rhythm, Worker, startEmbeddedPostgres, type EmbeddedServer } from 'rhythm';
import { installProbes, spawnWorker } from './fixtures/fault/harness.js';

const SETTINGS = { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' };

describe('Postgres stops and restarts mid-run', () => {
  let root: string;
  let dataDir: string;
  let server: EmbeddedServer;
  let r: Rhythm;

  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'rhythm-fault-pg-'));
    chmodSync(root, 0o755); // the server runs as the postgres user when we are root
    dataDir = path.join(root, 'pgdata');
    server = await startEmbeddedPostgres({ dataDir, settings: SETTINGS });
    r = await Rhythm.init({ databaseUrl: server.url });
    await installProbes(r.pool, r.names);
  });
  afterAll(async () => {
    await r?.shutdown().catch(() => undefined);
    await server?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  /** Stops the server and starts it again on the same port and data folder. */
  async function restart(worker: ReturnType<typeof spawnWorker>): Promise<{ downMs: number; restartedAt: number; stoppedAt: number }> {
    const port = server.port;
    await server.stop();
    const stoppedAt = Date.now();
    await worker.waitFor((m) => m.msg === 'LISTEN connection lost; reconnecting', 'the worker noticing the outage');
    server = await startEmbeddedPostgres({ dataDir, port, settings: SETTINGS });
    expect(server.port).toBe(port);
    expect(server.owned).toBe(true);
    return { downMs: Date.now() - stoppedAt, restartedAt: Date.now(), stoppedAt };
  }

  function startWorker(options: { internalWorker?: { tickMs: number } } = {}): ReturnType<typeof spawnWorker> {
    return spawnWorker(
      {
        databaseUrl: server.url,
        name: 'w',
        retryBackoff: { baseMs: 50, maxMs: 500 },
        ...options,
        worker: { queue: 'pg', concurrency: 20, visibilityTimeoutMs: 5_000, pollIntervalMs: 600_000 },
        tasks: ['record'],
        progressEvery: 50,
      },
      { logLevel: 'info' },
    );
  }

  const tasks = (n: number, ms: number) =>
    Array.from({ length: n }, (_, i) => ({ name: 'record', payload: { i, ms, retryDb: true }, options: { queue: 'pg', maxAttempts: 10 } }));

  // One run (one worker process, one restart) serves both: the waits are made before the outage.
  it('workers and listeners reconnect; every task completes exactly once, none lost; wait() calls made before the outage resolve once their executions complete', {
    timeout: 90_000,
  }, async () => {
    const worker = startWorker();
    try {
      await worker.waitFor((m) => m.evt === 'ready', 'worker ready');
      const first = await r.enqueueMany(tasks(600, 10));
      const waits = Promise.allSettled(first.map((id) => r.wait(id, { timeoutMs: 60_000 })));
      await worker.waitFor((m) => m.evt === 'progress' && m.runs >= 100, 'progress before the stop');
      const { downMs, restartedAt, stoppedAt } = await restart(worker);
      const relisten = await worker.waitFor((m) => m.msg === 'LISTEN connection re-established', "the worker's LISTEN reconnect", 30_000);
      const relistenMs = relisten.time - stoppedAt; // pino's timestamp of the line

      const settled = await waits;
      const rejected = settled.flatMap((s) => (s.status === 'rejected' ? [String(s.reason)] : []));
      expect(rejected.length, `first rejections: ${rejected.slice(0, 2).join('; ')}`).toBe(0);
      const firstExecutions = settled.map((s) => (s as PromiseFulfilledResult<Awaited<ReturnType<Rhythm['wait']>>>).value);
      expect(firstExecutions.filter((e) => e.status !== 'completed').map((e) => [e.id, e.status, e.error])).toEqual([]);
      // Leases (5 s) outlived the outage: every task completed on the attempt that was running.
      expect(firstExecutions.filter((e) => e.attempts !== 1).map((e) => [e.id, e.attempts, e.error])).toEqual([]);
      const drainedMs = Date.now() - restartedAt;

      // New work after the restart: only a NOTIFY on the re-established LISTEN connection can
      // wake the idle worker; its fallback poll is 10 minutes away.
      const enqueuedAt = Date.now();
      const second = await r.enqueueMany(tasks(100, 1));
      const secondExecutions = await Promise.all(second.map((id) => r.wait(id, { timeoutMs: 20_000 })));
      expect(secondExecutions.filter((e) => e.status !== 'completed')).toEqual([]);
      const secondMs = Date.now() - enqueuedAt;

      const ids = [...first, ...second];
      const completions = await r.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM public.fault_transitions WHERE new_status = 'completed' AND execution_id = ANY($1::bigint[]) GROUP BY execution_id`,
        [ids],
      );
      expect(completions.rows.length).toBe(ids.length);
      expect(completions.rows.filter((row) => row.n !== 1)).toEqual([]);
      const ran = await r.pool.query(
        `SELECT count(DISTINCT execution_id)::int AS n FROM public.fault_runs WHERE execution_id = ANY($1::bigint[])`,
        [ids],
      );
      expect(ran.rows[0].n).toBe(ids.length);
      const left = await r.pool.query(`SELECT count(*)::int AS n FROM ${r.names.workQueue}`);
      expect(left.rows[0].n).toBe(0);
      // The worker process lived through it.
      expect(worker.child.exitCode).toBeNull();

      console.log(
        `[fault-pg-restart] server down ${downMs} ms (stop + start); worker LISTEN re-established ${relistenMs} ms after it had stopped; ` +
          `the ${first.length} tasks enqueued before all completed ${drainedMs} ms after the restart; ` +
          `${second.length} tasks enqueued after the restart done in ${secondMs} ms`,
      );
    } finally {
      await worker.kill('SIGKILL');
    }
  });

  it('a worker process running the internal worker survives Postgres restarts and keeps promoting', { timeout: 90_000 }, async () => {
    // A 1 ms tick keeps a recovery transaction open most of the time, so a restart hits one.
    const worker = startWorker({ internalWorker: { tickMs: 1 } });
    try {
      // Fully up: its LISTEN connection is open and its dispatcher runs.
      await worker.waitFor((m) => m.msg === 'worker started', 'worker started');
      for (let i = 0; i < 3; i++) {
        await restart(worker);
        await worker.waitFor(
          (m) =>
            m.msg === 'LISTEN connection re-established' &&
            worker.lines.filter((l) => l.msg === 'LISTEN connection re-established').length === i + 1,
          `reconnect ${i + 1}`,
          30_000,
        );
      }
      expect(worker.child.exitCode, worker.describe()).toBeNull();
      // Its internal worker still promotes: a delayed task runs.
      const id = await r.enqueue('record', { i: 0 }, { queue: 'pg', delayMs: 200 });
      expect((await r.wait(id, { timeoutMs: 20_000 })).status).toBe('completed');
    } finally {
      await worker.kill('SIGKILL');
    }
  });
  it('a LISTEN connection that first fails while the server is down is retried once it is back (wait() and a new worker work)', {
    timeout: 60_000,
  }, async () => {
    const late = await Rhythm.init({ databaseUrl: server.url, autoMigrate: false });
    try {
      const port = server.port;
      await server.stop();
      // First use of the LISTEN connection while the server is down: this wait() may fail.
      const early = await late.wait('1', { timeoutMs: 1_000 }).then(
        () => 'resolved',
        (err: Error) => err.message,
      );
      server = await startEmbeddedPostgres({ dataDir, port, settings: SETTINGS });
      // Back up: the same Rhythm must be able to listen now.
      const w = new Worker(late, { queue: 'late' });
      w.task('late', () => 'ok');
      const running = w.start().then(
        () => undefined,
        (err: Error) => err,
      );
      try {
        const id = await r.enqueue('late', null, { queue: 'late' });
        expect(await late.wait(id, { timeoutMs: 15_000 }), `first wait() during the outage: ${early}`).toMatchObject({
          status: 'completed',
          result: 'ok',
        });
      } finally {
        await w.stop();
        expect(await running).toBeUndefined(); // start() did not fail
      }
    } finally {
      await late.shutdown().catch(() => undefined);
    }
  });
});
