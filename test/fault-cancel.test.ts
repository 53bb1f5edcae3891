/**
 * Cancellation (AbortSignal end to end) and per-attempt timeouts.
 *
 * Cancels come from a second Rhythm instance (its own pool and LISTEN connection), as they
 * would from another process: the database tells the worker holding the task.
 *
 * What is asserted (the figures are logged, not asserted: the machine is shared and noisy):
 * - the execution is `cancelled` as soon as cancel() returns (one statement);
 * - a running handler sees its signal abort (main thread) or its shared-memory flag
 *   (thread: ctx.throwIfCancelled / ctx.cancelled) by the push path: the workers' visibility
 *   timeout is so long that no lease renewal happens before the wait for the abort gives up,
 *   so an abort seen at all was delivered by the database's notification;
 * - a thread that ignores its abort is terminated no sooner than abortGraceMs later, and its
 *   replacement runs the next task.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rhythm, Worker, type TaskContext } from 'rhythm';
import { createMigratedTestDatabase, type TestDatabaseHandle } from './support/db.js';
import { eventLog, installProbes } from './fixtures/fault/harness.js';

const FIXTURES = new URL('./fixtures/fault/', import.meta.url);
// Lease renewals come every third of the visibility timeout: none before PUSH_WAIT_MS is over.
const VISIBILITY_TIMEOUT_MS = 180_000;
const PUSH_WAIT_MS = 30_000;
const ABORT_GRACE_MS = 500;
const CHANNEL = `rhythm-fault-cancel-${process.pid}`;

type Ev = { evt: string; id: string; attempt?: number; threadId?: number; at: number; how?: string; name?: string; reason?: string };

describe('cancellation and timeouts', () => {
  let db: TestDatabaseHandle;
  let r: Rhythm;
  let producer: Rhythm;
  let running: Promise<unknown>;
  const main = eventLog();
  const threads = eventLog();
  const ran = new Set<string>();
  const channel = new BroadcastChannel(CHANNEL);
  channel.onmessage = (m: MessageEvent) => threads.push(m.data);
  const figures: string[] = [];
  let openGate!: () => void;
  const gate = new Promise<void>((resolve) => (openGate = resolve));

  /** A main-thread handler that runs until its signal aborts (or, from attempt `until`, returns at once). */
  const waitForAbort =
    (until = Infinity) =>
    async (_p: unknown, ctx: TaskContext) => {
      main.push({ evt: 'started', id: ctx.id, attempt: ctx.attempt, at: Date.now() });
      if (ctx.attempt >= until) return { attempt: ctx.attempt };
      const { signal } = ctx;
      await new Promise((_, reject) =>
        signal.addEventListener(
          'abort',
          () => {
            const reason = signal.reason as { name?: string; reason?: string };
            main.push({ evt: 'aborted', id: ctx.id, attempt: ctx.attempt, at: Date.now(), name: reason?.name, reason: reason?.reason });
            reject(signal.reason);
          },
          { once: true },
        ),
      );
    };

  beforeAll(async () => {
    db = await createMigratedTestDatabase('rhythm_fault_cancel');
    r = await Rhythm.init({ databaseUrl: db.url, retryBackoff: { baseMs: 20, maxMs: 100 } });
    producer = await Rhythm.init({ databaseUrl: db.url, autoMigrate: false });
    await installProbes(r.pool, r.names);
    await r.startInternalWorker({ tickMs: 100 });
    const io = new Worker(r, { queue: 'main', abortGraceMs: ABORT_GRACE_MS, visibilityTimeoutMs: VISIBILITY_TIMEOUT_MS });
    io.task('wait-abort', waitForAbort());
    io.task('hang-first', waitForAbort(2));
    io.task('ignore-signal', async (_p: unknown, ctx: TaskContext) => {
      main.push({ evt: 'started', id: ctx.id, attempt: ctx.attempt, at: Date.now() });
      await gate; // never looks at ctx.signal
      return { late: true };
    });
    io.task('record-run', (_p: unknown, ctx: TaskContext) => {
      ran.add(ctx.id);
      return { ran: ctx.id };
    });
    const cpu = new Worker(r, { queue: 'cpu', threads: 1, abortGraceMs: ABORT_GRACE_MS, visibilityTimeoutMs: VISIBILITY_TIMEOUT_MS });
    cpu.task('spin', new URL('thread-spin.js', FIXTURES));
    cpu.task('ok', new URL('thread-ok.js', FIXTURES));
    running = Promise.all([io.start(), cpu.start()]);
  });
  afterAll(async () => {
    openGate();
    channel.close();
    await producer?.shutdown();
    await r?.shutdown({ timeoutMs: 1_000 });
    await running;
    await db?.drop();
    if (figures.length) console.log(`[fault-cancel] ${figures.join('; ')}`);
  });

  async function okThread(): Promise<number> {
    const e = await r.wait<{ threadId: number }>(await r.enqueue('ok', null, { queue: 'cpu' }), { timeoutMs: 15_000 });
    expect(e.status).toBe('completed');
    return e.result!.threadId;
  }

  it('a queued task and a delayed task never run once cancelled', async () => {
    // Queued on a queue no worker serves yet, and delayed on a served queue.
    const queued = await r.enqueue('record-run', { which: 'queued' }, { queue: 'later' });
    const delayed = await r.enqueue('record-run', { which: 'delayed' }, { queue: 'main', delayMs: 300 });
    expect(await producer.cancel(queued)).toBe(true);
    expect(await producer.cancel(delayed)).toBe(true);
    expect(await producer.cancel(queued)).toBe(false); // already final
    expect(await r.get(queued)).toMatchObject({ status: 'cancelled', attempts: 0 });
    expect(await r.get(delayed)).toMatchObject({ status: 'cancelled', attempts: 0 });

    // A worker comes for 'later', and the delayed task's time passes: markers enqueued behind
    // them complete, the cancelled ones never ran.
    const later = new Worker(r, { queue: 'later' });
    later.task('record-run', (_p: unknown, ctx: TaskContext) => {
      ran.add(ctx.id);
      return null;
    });
    const laterRunning = later.start();
    try {
      const markers = await Promise.all([
        r.enqueue('record-run', { which: 'marker' }, { queue: 'later' }),
        r.enqueue('record-run', { which: 'marker' }, { queue: 'main', delayMs: 600 }),
      ]);
      for (const m of markers) expect((await r.wait(m, { timeoutMs: 15_000 })).status).toBe('completed');
      expect(ran.has(queued)).toBe(false);
      expect(ran.has(delayed)).toBe(false);
      expect(await r.get(queued)).toMatchObject({ status: 'cancelled', attempts: 0 });
      expect(await r.get(delayed)).toMatchObject({ status: 'cancelled', attempts: 0 });
    } finally {
      await later.stop();
      await laterRunning;
    }
  });

  it(`a running async task on the main thread: its signal aborts, it ends cancelled, the worker goes on`, async () => {
    const id = await r.enqueue('wait-abort', {}, { queue: 'main' });
    await main.waitFor((e) => e.evt === 'started' && e.id === id, 'the handler to start');
    expect((await r.get(id))!.status).toBe('running');
    const t0 = Date.now();
    expect(await producer.cancel(id)).toBe(true);
    const finalNow = await r.wait(id, { timeoutMs: 5_000 });
    expect(finalNow.status).toBe('cancelled');
    const aborted = (await main.waitFor((e) => e.evt === 'aborted' && e.id === id, 'the abort', PUSH_WAIT_MS)) as Ev;
    const latency = aborted.at - t0;
    figures.push(`main-thread abort ${latency} ms after cancel()`);
    expect(aborted).toMatchObject({ name: 'TaskAbortedError', reason: 'cancelled' });
    // The worker goes on; the handler's rejection did not overwrite the cancellation.
    const next = await r.enqueue('record-run', {}, { queue: 'main' });
    expect((await r.wait(next, { timeoutMs: 15_000 })).status).toBe('completed');
    expect(await r.get(id)).toMatchObject({ status: 'cancelled', error: expect.objectContaining({ name: 'CancelledError' }) });
  });

  it(`a synchronous CPU loop on a thread checking ctx.throwIfCancelled() stops; the thread is reused`, async () => {
    const before = await okThread();
    const id = await r.enqueue('spin', { channel: CHANNEL, mode: 'throw' }, { queue: 'cpu' });
    const started = (await threads.waitFor((e) => e.evt === 'started' && e.id === id, 'the loop to start')) as Ev;
    expect(started.threadId).toBe(before);
    const t0 = Date.now();
    expect(await producer.cancel(id)).toBe(true);
    const stopped = (await threads.waitFor((e) => e.evt === 'stopped' && e.id === id, 'the loop to stop', PUSH_WAIT_MS)) as Ev;
    const latency = stopped.at - t0;
    figures.push(`thread loop (throwIfCancelled) stopped ${latency} ms after cancel()`);
    expect(stopped).toMatchObject({ how: 'throw', name: 'TaskAbortedError', reason: 'cancelled' });
    expect((await r.get(id))!.status).toBe('cancelled');
    // The loop ended cleanly: the same thread serves the next task.
    expect(await okThread()).toBe(before);
  });

  it('a thread loop polling ctx.cancelled stops; the value it returns afterwards does not overwrite the cancellation', async () => {
    const id = await r.enqueue('spin', { channel: CHANNEL, mode: 'flag' }, { queue: 'cpu' });
    await threads.waitFor((e) => e.evt === 'started' && e.id === id, 'the loop to start');
    const t0 = Date.now();
    expect(await producer.cancel(id)).toBe(true);
    const stopped = (await threads.waitFor((e) => e.evt === 'stopped' && e.id === id, 'the loop to stop', PUSH_WAIT_MS)) as Ev;
    figures.push(`thread loop (ctx.cancelled) stopped ${stopped.at - t0} ms after cancel()`);
    await okThread(); // the loop's outcome has been handled by now
    expect(await r.get(id)).toMatchObject({ status: 'cancelled', result: null });
  });

  it(`a thread loop that ignores cancellation is terminated after abortGraceMs (${ABORT_GRACE_MS} ms) and replaced; the pool goes on`, async () => {
    const before = await okThread();
    const id = await r.enqueue('spin', { channel: CHANNEL, mode: 'ignore', maxMs: 30_000 }, { queue: 'cpu' });
    await threads.waitFor((e) => e.evt === 'started' && e.id === id, 'the loop to start');
    const t0 = Date.now();
    expect(await producer.cancel(id)).toBe(true);
    expect((await r.get(id))!.status).toBe('cancelled');
    // With one thread, the next task can only run once the spinning thread is gone.
    const after = await okThread();
    const freedMs = Date.now() - t0;
    figures.push(`ignoring thread terminated and replaced; next task done ${freedMs} ms after cancel() (grace ${ABORT_GRACE_MS} ms)`);
    expect(after).not.toBe(before);
    expect(freedMs).toBeGreaterThanOrEqual(ABORT_GRACE_MS);
    expect(threads.list.some((e) => e.id === id && e.evt !== 'started')).toBe(false); // it never got to finish
    expect(await r.get(id)).toMatchObject({ status: 'cancelled' });
  });

  it('timeoutMs on the main thread: the signal aborts with a timeout reason, the attempt fails and is retried', async () => {
    const id = await r.enqueue('hang-first', {}, { queue: 'main', timeoutMs: 300, maxAttempts: 2 });
    const e = await r.wait(id, { timeoutMs: 15_000 });
    expect(e).toMatchObject({ status: 'completed', attempts: 2, result: { attempt: 2 } });
    const aborted = (await main.waitFor((x) => x.evt === 'aborted' && x.id === id, 'the timeout abort')) as Ev;
    expect(aborted).toMatchObject({ attempt: 1, name: 'TaskTimeoutError', reason: 'timeout' });
    const started = main.list.find((x) => x.evt === 'started' && x.id === id && x.attempt === 1)!;
    expect(aborted.at - started.at).toBeGreaterThanOrEqual(290);
    const retried = await r.pool.query(`SELECT error FROM public.fault_transitions WHERE execution_id = $1 AND new_status = 'scheduled'`, [
      id,
    ]);
    expect(retried.rows).toEqual([{ error: expect.objectContaining({ name: 'TaskTimeoutError' }) }]);
  });

  it('timeoutMs on a main-thread handler that ignores its signal: the attempt is abandoned after the grace period and fails', async () => {
    const t0 = Date.now();
    const id = await r.enqueue('ignore-signal', {}, { queue: 'main', timeoutMs: 300, maxAttempts: 1 });
    const e = await r.wait(id, { timeoutMs: 15_000 });
    const ms = Date.now() - t0;
    figures.push(`main-thread handler ignoring its 300 ms timeout abandoned after ${ms} ms`);
    expect(e).toMatchObject({
      status: 'failed',
      attempts: 1,
      error: expect.objectContaining({ name: 'TaskTimeoutError', message: expect.stringMatching(/abandoned/) }),
    });
    expect(ms).toBeGreaterThanOrEqual(300 + ABORT_GRACE_MS - 50);
    // Its capacity is free again: the worker goes on.
    const next = await r.enqueue('record-run', {}, { queue: 'main' });
    expect((await r.wait(next, { timeoutMs: 15_000 })).status).toBe('completed');
  });

  it('timeoutMs on a thread: a loop checking ctx.throwIfCancelled() fails with TaskTimeoutError and is retried until attempts run out', async () => {
    const id = await r.enqueue('spin', { channel: CHANNEL, mode: 'throw' }, { queue: 'cpu', timeoutMs: 300, maxAttempts: 2 });
    const e = await r.wait(id, { timeoutMs: 15_000 });
    expect(e).toMatchObject({ status: 'failed', attempts: 2, error: expect.objectContaining({ name: 'TaskTimeoutError' }) });
    const stops = threads.list.filter((x) => x.evt === 'stopped' && x.id === id);
    expect(stops.map((x) => [x.attempt, x.reason])).toEqual([
      [1, 'timeout'],
      [2, 'timeout'],
    ]);
  });

  it('timeoutMs on a thread loop that ignores it: the thread is terminated after the grace period and the attempt fails', async () => {
    const before = await okThread();
    const t0 = Date.now();
    const id = await r.enqueue(
      'spin',
      { channel: CHANNEL, mode: 'ignore', maxMs: 30_000 },
      { queue: 'cpu', timeoutMs: 300, maxAttempts: 1 },
    );
    const e = await r.wait(id, { timeoutMs: 15_000 });
    const ms = Date.now() - t0;
    figures.push(`thread ignoring its 300 ms timeout failed after ${ms} ms`);
    expect(e).toMatchObject({
      status: 'failed',
      attempts: 1,
      error: expect.objectContaining({ name: 'TaskTimeoutError', message: expect.stringMatching(/thread was terminated/) }),
    });
    expect(await okThread()).not.toBe(before);
  });
});
