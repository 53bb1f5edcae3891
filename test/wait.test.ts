/**
 * wait(): resolves with the finished execution once a `done` NOTIFY arrives, without polling.
 * The producer Rhythm here runs no worker; a second Rhythm (another "process") runs it, so
 * the completion can only reach the producer through Postgres. Reads the producer makes are
 * counted on its wait pool: one when wait() starts, one per notification, none in between.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rhythm, RhythmError, WaitTimeoutError, Worker } from 'rhythm';
import { deferred, freshRhythm, isSettled, type TestDatabase } from './helpers.js';

const Q = 'waited';
let db: TestDatabase;
let r: Rhythm; // producer: enqueue, wait
let rw: Rhythm; // worker process
let running: Promise<void>;
const gates = new Map<string, { started: ReturnType<typeof deferred>; release: ReturnType<typeof deferred> }>();

function gate(key: string) {
  let g = gates.get(key);
  if (!g) gates.set(key, (g = { started: deferred(), release: deferred() }));
  return g;
}

/**
 * Counts wait()'s read statements: the queries on a Rhythm's wait pool (a private member,
 * created here if no wait has yet; the calls pass through unchanged).
 */
function countQueries(rh: Rhythm) {
  const internals = rh as unknown as { waitersFor(): unknown; waitPool: { query: (...args: unknown[]) => unknown } };
  internals.waitersFor();
  const pool = internals.waitPool;
  const original = pool.query;
  const first = deferred<Promise<unknown>>();
  const state = { calls: 0, first: first.promise };
  pool.query = function (this: unknown, ...args: unknown[]) {
    state.calls++;
    const result = original.apply(this, args);
    if (state.calls === 1) first.resolve(Promise.resolve(result).catch(() => undefined));
    return result;
  };
  return { state, restore: () => (pool.query = original) };
}

beforeAll(async () => {
  ({ db, r } = await freshRhythm());
  rw = await Rhythm.init({ databaseUrl: db.url, retryBackoff: { baseMs: 20, maxMs: 200 } });
  const w = new Worker(rw, { queue: Q });
  w.task('gated', async (payload: { key: string }) => {
    const g = gate(payload.key);
    g.started.resolve();
    await g.release.promise;
    return { released: payload.key };
  });
  w.task('quick', async (payload: unknown) => ({ echo: payload }));
  w.task('fails', async () => {
    throw new TypeError('bad input');
  });
  running = w.start();
  // Connect the producer's LISTEN connection once, so counts below see only wait()'s reads.
  const warm = await r.enqueue('quick', 'warm-up', { queue: Q });
  await r.wait(warm, { timeoutMs: 10_000 });
});
afterAll(async () => {
  await r?.shutdown();
  await rw?.shutdown();
  await running;
  await db?.drop();
});

describe('wait()', () => {
  it('resolves on the done notification from another process: one read to start, one after the NOTIFY, no polling', async () => {
    const id = await r.enqueue('gated', { key: 'a' }, { queue: Q });
    await gate('a').started.promise; // the task is running on the other Rhythm
    const counter = countQueries(r);
    try {
      const waiting = r.wait(id, { timeoutMs: 10_000 });
      await (await counter.state.first); // wait()'s own first read has completed...
      expect(await isSettled(waiting)).toBe(false); // ...and saw the task still running
      expect(counter.state.calls).toBe(1);

      gate('a').release.resolve();
      const e = await waiting;
      expect(e).toMatchObject({ id, status: 'completed', result: { released: 'a' }, attempts: 1 });
      expect(e.finishedAt).toBeInstanceOf(Date);
      expect(counter.state.calls).toBe(2);
    } finally {
      counter.restore();
    }
  });

  it('with timeoutMs rejects with WaitTimeoutError for a task nobody serves, having read it only once', async () => {
    const id = await r.enqueue('nobody-serves', {}, { queue: Q });
    const counter = countQueries(r);
    const started = Date.now();
    try {
      const err = await r.wait(id, { timeoutMs: 1_000 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WaitTimeoutError);
      expect((err as Error).message).toContain(id);
      expect((err as Error).message).toMatch(/1000 ms/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(990); // not before its time
      expect(counter.state.calls).toBe(1); // no polling during the second it waited
    } finally {
      counter.restore();
    }
    // Timing out a wait changes nothing about the task.
    expect((await r.get(id))!.status).toBe('queued');
    expect(await r.cancel(id)).toBe(true);
  });

  it('resolves at once with an execution that had already finished', async () => {
    const id = await r.enqueue('quick', 1, { queue: Q });
    const first = await r.wait(id, { timeoutMs: 10_000 });
    const counter = countQueries(r);
    try {
      const again = await r.wait(id, { timeoutMs: 10_000 });
      expect(again).toEqual(first);
      // Its own read; plus at most one more if the done NOTIFY of the first wait was still in
      // flight (the first wait may have been resolved by its initial read).
      expect(counter.state.calls).toBeGreaterThanOrEqual(1);
      expect(counter.state.calls).toBeLessThanOrEqual(2);
    } finally {
      counter.restore();
    }
  });

  it('rejects for an id that does not exist', async () => {
    await expect(r.wait('987654321', { timeoutMs: 5_000 })).rejects.toThrow(/no execution with id 987654321/);
  });

  it('resolves with failed and cancelled executions too', async () => {
    const failed = await r.enqueue('fails', {}, { queue: Q, maxAttempts: 1 });
    const e = await r.wait(failed, { timeoutMs: 10_000 });
    expect(e).toMatchObject({ status: 'failed', error: { name: 'TypeError', message: 'bad input' } });

    const orphan = await r.enqueue('nobody-serves', {}, { queue: Q });
    const waiting = r.wait(orphan, { timeoutMs: 10_000 });
    expect(await rw.cancel(orphan)).toBe(true); // cancelled from the other process
    expect(await waiting).toMatchObject({ status: 'cancelled', error: { name: 'CancelledError' } });
  });

  it('many waiters on one execution, in two processes, all resolve with it', async () => {
    const id = await r.enqueue('gated', { key: 'b' }, { queue: Q });
    const waits = [
      r.wait(id, { timeoutMs: 10_000 }),
      r.wait(id, { timeoutMs: 10_000 }),
      rw.wait(id, { timeoutMs: 10_000 }),
      r.wait(id, { timeoutMs: 10_000 }),
    ];
    await gate('b').started.promise;
    for (const w of waits) expect(await isSettled(w)).toBe(false);
    gate('b').release.resolve();
    const results = await Promise.all(waits);
    for (const e of results) expect(e).toMatchObject({ id, status: 'completed', result: { released: 'b' } });
  });

  it('a timed-out waiter does not disturb another waiter on the same execution', async () => {
    const id = await r.enqueue('gated', { key: 'c' }, { queue: Q });
    const long = r.wait(id, { timeoutMs: 10_000 });
    await expect(r.wait(id, { timeoutMs: 50 })).rejects.toThrow(WaitTimeoutError);
    expect(await isSettled(long)).toBe(false);
    gate('c').release.resolve();
    expect(await long).toMatchObject({ status: 'completed', result: { released: 'c' } });
  });

  it('waits for hundreds of executions at once', async () => {
    const ids = await r.enqueueMany(Array.from({ length: 300 }, (_, i) => ({ name: 'quick', payload: i, options: { queue: Q } })));
    const done = await Promise.all(ids.map((id) => r.wait(id, { timeoutMs: 15_000 })));
    done.forEach((e, i) => expect(e).toMatchObject({ id: ids[i], status: 'completed', result: { echo: i } }));
  });

  it('a wait() still pending at shutdown() settles (rejects) by the time shutdown resolves', async () => {
    const other = await Rhythm.init({ databaseUrl: db.url });
    const id = await other.enqueue('nobody-serves', {}, { queue: Q });
    const counter = countQueries(other);
    // The outcome is observed from the start, so the rejection is never unhandled.
    const outcome = other.wait(id, { timeoutMs: 30_000 }).then(
      () => 'resolved' as const,
      (e: unknown) => e,
    );
    await (await counter.state.first); // the wait is registered and has read its execution once
    counter.restore();
    await other.shutdown();
    expect(await isSettled(outcome)).toBe(true);
    const err = await outcome;
    expect(err).toBeInstanceOf(RhythmError);
    expect(err).not.toBeInstanceOf(WaitTimeoutError);
    await r.cancel(id);
  });

  it('wait() after shutdown() rejects at once', async () => {
    const other = await Rhythm.init({ databaseUrl: db.url });
    const id = await other.enqueue('quick', 'x', { queue: Q });
    await other.shutdown();
    await expect(other.wait(id, { timeoutMs: 30_000 })).rejects.toThrow();
  });
});
