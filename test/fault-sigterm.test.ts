/**
 * Signals to a worker process started with Rhythm.init({ handleSignals: true }):
 * - SIGTERM: it stops claiming at once, lets its in-flight tasks finish, writes their
 *   completions, and exits 0; nothing is left running, untouched tasks stay queued.
 * - SIGINT twice: the second one forces a fast stop: in-flight tasks are aborted and their
 *   leases handed back at once (queued again, the attempt not counted); exit code 130.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rhythm } from 'rhythm';
import { createMigratedTestDatabase, type TestDatabaseHandle } from './support/db.js';
import { spawnWorker } from './fixtures/fault/harness.js';

describe('signals to a worker process (handleSignals)', () => {
  let db: TestDatabaseHandle;
  let r: Rhythm;

  beforeAll(async () => {
    db = await createMigratedTestDatabase('rhythm_fault_signals');
    r = await Rhythm.init({ databaseUrl: db.url });
  });
  afterAll(async () => {
    await r?.shutdown();
    await db?.drop();
  });

  const startWorker = (queue: string) =>
    spawnWorker(
      { databaseUrl: db.url, name: queue, handleSignals: true, worker: { queue, concurrency: 2, abortGraceMs: 1_000 }, tasks: ['slow'] },
      { logLevel: 'info' },
    );

  it('SIGTERM: in-flight tasks finish, nothing is left running, the rest stay queued, exit code 0', async () => {
    const w = startWorker('term');
    try {
      await w.waitFor((m) => m.evt === 'ready', 'ready');
      const ids = await r.enqueueMany(
        Array.from({ length: 6 }, (_, i) => ({ name: 'slow', payload: { i, ms: 1_500 }, options: { queue: 'term' } })),
      );
      // Concurrency 2: two tasks start, four wait.
      await w.waitFor((m) => m.evt === 'started' && w.lines.filter((l) => l.evt === 'started').length === 2, 'two tasks started');
      const started = w.lines.filter((l) => l.evt === 'started').map((l) => l.id as string);
      const signalledAt = Date.now();
      w.child.kill('SIGTERM');
      const { code, signal } = await w.exited;
      const exitMs = Date.now() - signalledAt;
      expect({ code, signal }).toEqual({ code: 0, signal: null });

      // The two in-flight tasks ran to their end (not aborted) and were completed.
      const finished = w.lines.filter((l) => l.evt === 'finished');
      expect(finished.map((l) => l.id).sort()).toEqual([...started].sort());
      expect(finished.every((l) => l.aborted === false)).toBe(true);
      for (const id of started) {
        const e = await r.get(id);
        expect(e).toMatchObject({ status: 'completed', attempts: 1 });
      }
      // No new claim after the signal: the other four were never started and are ready to run.
      expect(w.lines.filter((l) => l.evt === 'started').length).toBe(2);
      for (const id of ids.filter((id) => !started.includes(id))) {
        expect(await r.get(id)).toMatchObject({ status: 'queued', attempts: 0 });
      }
      // No zombie: no claimed work_queue row (the public status "running" is exactly that).
      const claimed = await r.pool.query(`SELECT count(*)::int AS n FROM ${r.names.workQueue} WHERE claimed_until IS NOT NULL`);
      expect(claimed.rows[0].n).toBe(0);
      // And it said so.
      expect(w.lines.some((l) => l.msg === 'graceful shutdown complete')).toBe(true);
      console.log(`[fault-sigterm] SIGTERM with 2 tasks of 1.5 s in flight: exit 0 after ${exitMs} ms`);
      expect(exitMs).toBeLessThan(15_000);
    } finally {
      await w.kill('SIGKILL');
    }
  });

  it('a second SIGINT forces a fast stop: in-flight tasks are aborted and handed back (queued, attempt not counted), exit code 130', async () => {
    const w = startWorker('force');
    try {
      await w.waitFor((m) => m.evt === 'ready', 'ready');
      const ids = await r.enqueueMany(
        Array.from({ length: 2 }, (_, i) => ({ name: 'slow', payload: { i, ms: 60_000, abortable: true }, options: { queue: 'force' } })),
      );
      await w.waitFor((m) => m.evt === 'started' && w.lines.filter((l) => l.evt === 'started').length === 2, 'two tasks started');
      const signalledAt = Date.now();
      w.child.kill('SIGINT');
      // The first SIGINT starts a graceful shutdown (30 s default): the tasks keep running.
      await w.waitFor((m) => typeof m.msg === 'string' && m.msg.startsWith('signal received'), 'first signal logged');
      w.child.kill('SIGINT');
      const { code } = await w.exited;
      const exitMs = Date.now() - signalledAt;
      expect(code).toBe(130);
      expect(w.lines.some((l) => l.msg === 'forced stop complete')).toBe(true);
      // The handlers saw their signal abort with the shutdown reason.
      const aborted = w.lines.filter((l) => l.evt === 'aborted');
      expect(aborted.map((l) => l.id).sort()).toEqual([...ids].sort());
      expect(aborted.every((l) => l.reason === 'shutdown')).toBe(true);
      // Handed back: ready again at once, the aborted attempt not counted, nothing claimed.
      for (const id of ids) expect(await r.get(id)).toMatchObject({ status: 'queued', attempts: 0 });
      const claimed = await r.pool.query(`SELECT count(*)::int AS n FROM ${r.names.workQueue} WHERE claimed_until IS NOT NULL`);
      expect(claimed.rows[0].n).toBe(0);
      console.log(`[fault-sigterm] double SIGINT with 2 tasks of 60 s in flight: exit 130 after ${exitMs} ms, both handed back`);
      expect(exitMs).toBeLessThan(10_000);
    } finally {
      await w.kill('SIGKILL');
    }
  });
  it('SIGTERM with thread tasks in flight: they finish and complete, exit code 0', async () => {
    const channel = `rhythm-fault-sigterm-${process.pid}`;
    const w = spawnWorker(
      {
        databaseUrl: db.url,
        name: 'term-cpu',
        handleSignals: true,
        channel,
        worker: { queue: 'term-cpu', threads: 2, abortGraceMs: 1_000 },
        modules: { spin: 'thread-spin.js' },
      },
      { logLevel: 'info' },
    );
    try {
      await w.waitFor((m) => m.evt === 'ready', 'ready');
      const ids = await r.enqueueMany(
        Array.from({ length: 2 }, (_, i) => ({
          name: 'spin',
          payload: { i, channel, mode: 'throw', maxMs: 1_500 },
          options: { queue: 'term-cpu' },
        })),
      );
      for (const id of ids)
        await w.waitFor((m) => m.evt === 'thread' && m.thread.evt === 'started' && m.thread.id === id, `thread task ${id} to start`);
      w.child.kill('SIGTERM');
      const { code, signal } = await w.exited;
      expect({ code, signal }).toEqual({ code: 0, signal: null });
      for (const id of ids) expect(await r.get(id)).toMatchObject({ status: 'completed', attempts: 1, result: { stoppedBy: 'deadline' } });
      const claimed = await r.pool.query(`SELECT count(*)::int AS n FROM ${r.names.workQueue} WHERE claimed_until IS NOT NULL`);
      expect(claimed.rows[0].n).toBe(0);
    } finally {
      await w.kill('SIGKILL');
    }
  });
});
