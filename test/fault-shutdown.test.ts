/**
 * Graceful shutdown with a timeout: r.shutdown({ timeoutMs }) stops claiming at once, lets
 * in-flight tasks finish until the timeout, then aborts the rest and hands their leases back
 * immediately (queued again, the aborted attempt not counted); a handler or thread that
 * ignores the abort is abandoned or terminated after abortGraceMs. worker.start() resolves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rhythm, RhythmValidationError, Worker, type TaskContext } from 'rhythm';
import { createMigratedTestDatabase, type TestDatabaseHandle } from './support/db.js';
import { eventLog } from './fixtures/fault/harness.js';

const FIXTURES = new URL('./fixtures/fault/', import.meta.url);
const CHANNEL = `rhythm-fault-shutdown-${process.pid}`;
const TIMEOUT_MS = 1_000;
const GRACE_MS = 500;

describe('graceful shutdown with a timeout', () => {
  let db: TestDatabaseHandle;
  let observer: Rhythm;

  beforeAll(async () => {
    db = await createMigratedTestDatabase('rhythm_fault_shutdown');
    observer = await Rhythm.init({ databaseUrl: db.url });
  });
  afterAll(async () => {
    await observer?.shutdown();
    await db?.drop();
  });

  it('main thread: finishes what it can, aborts the rest after the timeout and hands their leases back at once; start() resolves', async () => {
    const events = eventLog();
    let releaseStubborn!: () => void;
    const stubbornGate = new Promise<void>((resolve) => (releaseStubborn = resolve));
    const r = await Rhythm.init({ databaseUrl: db.url });
    try {
      const io = new Worker(r, { queue: 'shut', abortGraceMs: GRACE_MS });
      io.task('quick', async (_p: unknown, ctx: TaskContext) => {
        events.push({ evt: 'started', id: ctx.id });
        await new Promise((resolve) => setTimeout(resolve, 300));
        return { done: true };
      });
      io.task('cooperative', async (_p: unknown, ctx: TaskContext) => {
        events.push({ evt: 'started', id: ctx.id });
        const { signal } = ctx;
        await new Promise((_, reject) =>
          signal.addEventListener('abort', () => {
            events.push({ evt: 'aborted', id: ctx.id, reason: (signal.reason as { reason?: string }).reason, at: Date.now() });
            reject(signal.reason);
          }),
        );
      });
      io.task('stubborn', async (_p: unknown, ctx: TaskContext) => {
        events.push({ evt: 'started', id: ctx.id });
        await stubbornGate; // ignores its signal
        return { late: true };
      });
      let startResolved = false;
      const started = io.start().then(() => (startResolved = true));

      const quick = await r.enqueue('quick', {}, { queue: 'shut' });
      const coop = await r.enqueue('cooperative', {}, { queue: 'shut' });
      const stubborn = await r.enqueue('stubborn', {}, { queue: 'shut' });
      for (const id of [quick, coop, stubborn]) await events.waitFor((e) => e.evt === 'started' && e.id === id, `task ${id} to start`);
      const t0 = Date.now();
      const shutdown = r.shutdown({ timeoutMs: TIMEOUT_MS });
      // Something enqueued during the shutdown is not claimed.
      const late = await observer.enqueue('quick', {}, { queue: 'shut' });
      await shutdown;
      const shutdownMs = Date.now() - t0;
      await started;
      expect(startResolved).toBe(true);

      // The quick task finished within the timeout and was completed.
      expect(await observer.get(quick)).toMatchObject({ status: 'completed', attempts: 1, result: { done: true } });
      // The others were aborted with the shutdown reason and handed back: queued, attempt not counted.
      expect(events.list.find((e) => e.evt === 'aborted' && e.id === coop)).toMatchObject({ reason: 'shutdown' });
      for (const id of [coop, stubborn]) expect(await observer.get(id)).toMatchObject({ status: 'queued', attempts: 0 });
      expect(events.list.some((e) => e.evt === 'started' && e.id === late)).toBe(false);
      expect(await observer.get(late)).toMatchObject({ status: 'queued', attempts: 0 });
      const claimed = await observer.pool.query(
        `SELECT count(*)::int AS n FROM ${observer.names.workQueue} WHERE claimed_until IS NOT NULL`,
      );
      expect(claimed.rows[0].n).toBe(0);
      // It waited for the timeout (then the grace period at most), not for the endless tasks.
      console.log(
        `[fault-shutdown] shutdown({ timeoutMs: ${TIMEOUT_MS} }) with 2 unfinishable main-thread tasks returned after ${shutdownMs} ms (grace ${GRACE_MS} ms)`,
      );
      expect(shutdownMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
      expect(shutdownMs).toBeLessThan(TIMEOUT_MS + GRACE_MS + 5_000);

      // Handed back at once: another worker runs them now, with no lease to wait out (30 s).
      await rerunElsewhere('shut', ['quick', 'cooperative', 'stubborn'], [coop, stubborn, late]);
    } finally {
      releaseStubborn();
      await r.shutdown({ timeoutMs: 0 });
    }
  });

  it('threads: an in-flight thread task finishes within the timeout; a loop that ignores the abort is terminated after the grace period and handed back', async () => {
    const events = eventLog();
    const channel = new BroadcastChannel(CHANNEL);
    channel.onmessage = (m: MessageEvent) => events.push(m.data);
    const r = await Rhythm.init({ databaseUrl: db.url });
    try {
      const cpu = new Worker(r, { queue: 'shut-cpu', threads: 2, abortGraceMs: GRACE_MS });
      cpu.task('spin', new URL('thread-spin.js', FIXTURES));
      let startResolved = false;
      const started = cpu.start().then(() => (startResolved = true));
      // Runs 300 ms (checking for cancellation) and returns: finishes well within the timeout.
      const finishing = await r.enqueue('spin', { channel: CHANNEL, mode: 'throw', maxMs: 300 }, { queue: 'shut-cpu' });
      // Never checks and would run 30 s: must be terminated and handed back.
      const stubborn = await r.enqueue('spin', { channel: CHANNEL, mode: 'ignore', maxMs: 30_000 }, { queue: 'shut-cpu' });
      for (const id of [finishing, stubborn]) await events.waitFor((e) => e.evt === 'started' && e.id === id, `task ${id} to start`);
      const t0 = Date.now();
      await r.shutdown({ timeoutMs: TIMEOUT_MS });
      const shutdownMs = Date.now() - t0;
      await started;
      expect(startResolved).toBe(true);
      expect(await observer.get(finishing)).toMatchObject({ status: 'completed', attempts: 1, result: { stoppedBy: 'deadline' } });
      expect(await observer.get(stubborn)).toMatchObject({ status: 'queued', attempts: 0 });
      expect(shutdownMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
      expect(shutdownMs).toBeLessThan(TIMEOUT_MS + GRACE_MS + 5_000);
      await rerunElsewhere('shut-cpu', ['spin'], [stubborn]);
    } finally {
      channel.close();
      await r.shutdown({ timeoutMs: 0 });
    }
  });

  /** Another worker (on the observer) picks these up at once: their leases were handed back. */
  async function rerunElsewhere(queue: string, names: string[], ids: string[]): Promise<void> {
    const next = new Worker(observer, { queue });
    for (const name of names) next.task(name, (_p: unknown, ctx: TaskContext) => ({ rerun: ctx.attempt }));
    const nextRunning = next.start();
    try {
      for (const id of ids) {
        expect(await observer.wait(id, { timeoutMs: 10_000 })).toMatchObject({ status: 'completed', attempts: 1, result: { rerun: 1 } });
      }
    } finally {
      await next.stop();
      await nextRunning;
    }
  }

  it('a mistyped shutdown option is refused before the shutdown starts; the instance still shuts down after', async () => {
    const r = await Rhythm.init({ databaseUrl: db.url });
    const w = new Worker(r, { queue: 'shut-typo' });
    w.task('echo', (p: unknown) => p);
    const running = w.start();
    for (const bad of [{ timeout: 1000 }, { timeoutMs: -1 }, { force: 'yes' }, null]) {
      await expect(r.shutdown(bad as never)).rejects.toThrow(RhythmValidationError);
    }
    // Still working: a task enqueued now is run.
    const id = await observer.enqueue('echo', { after: 'typo' }, { queue: 'shut-typo' });
    expect(await observer.wait(id, { timeoutMs: 10_000 })).toMatchObject({ status: 'completed', result: { after: 'typo' } });
    await r.shutdown({ timeoutMs: 1_000 });
    await running;
    await expect(r.enqueue('echo', 1)).rejects.toThrow();
  });
});
