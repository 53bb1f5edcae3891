/**
 * wait(): resolves with the finished execution once a `done` NOTIFY arrives, without polling.
 * The producer Rhythm here runs no worker; a second Rhythm (another "process") runs it, so
 * the completion can only reach the producer through Postgres. Reads the producer makes are
 * counted on its wait pool: one when wait() starts, one per notification, none in between.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rhythm, RhythmError, WaitTimeoutError, Worker } from 'rhythm';
import { countWaitReads, deferred, freshRhythm, isSettled, type TestDatabase } from './helpers.js';

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
    const counter = countWaitReads(r);
    try {
      const waiting = r.wait(id, { timeoutMs: 10_000 });
      await await counter.state.first; // wait()'s own first read has completed...
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
    const counter = countWaitReads(r);
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
    const counter = countWaitReads(r);
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

  it('waits with different timeouts each end at their own, and a longer one stays pending', async () => {
    const ids = await r.enqueueMany([1, 2, 3, 4].map((i) => ({ name: 'nobody-serves', payload: i, options: { queue: Q } })));
    const timeouts = [300, 100, 200, 100];
    const long = r.wait(ids[0]!, { timeoutMs: 20_000 });
    const errors = await Promise.all(ids.map((id, i) => r.wait(id, { timeoutMs: timeouts[i] }).catch((e: unknown) => e)));
    errors.forEach((err, i) => {
      expect(err).toBeInstanceOf(WaitTimeoutError);
      expect((err as Error).message).toBe(`execution ${ids[i]} did not finish within ${timeouts[i]} ms`);
    });
    expect(await isSettled(long)).toBe(false);
    expect(await rw.cancel(ids[0]!)).toBe(true);
    expect(await long).toMatchObject({ id: ids[0], status: 'cancelled' });
    for (const id of ids.slice(1)) expect(await r.cancel(id)).toBe(true);
  });

  it('a pending wait still times out after thousands of others resolved around it', async () => {
    const stuck = await r.enqueue('nobody-serves', {}, { queue: Q });
    const pending = r.wait(stuck, { timeoutMs: 5_000 }).catch((e: unknown) => e);
    // Thousands of deadlines come and go (and are swept) while it waits: it must not be lost with them.
    const ids = await r.enqueueMany(Array.from({ length: 3_000 }, (_, i) => ({ name: 'quick', payload: i, options: { queue: Q } })));
    const done = await Promise.all(ids.map((id, i) => r.wait(id, { timeoutMs: i % 2 === 0 ? 30_000 : 60_000 })));
    expect(done.every((e) => e.status === 'completed')).toBe(true);
    const err = await pending;
    expect(err).toBeInstanceOf(WaitTimeoutError);
    expect((err as Error).message).toContain(stuck);
    expect(await r.cancel(stuck)).toBe(true);
  });

  it('waits for hundreds of executions at once', async () => {
    const ids = await r.enqueueMany(Array.from({ length: 300 }, (_, i) => ({ name: 'quick', payload: i, options: { queue: Q } })));
    const done = await Promise.all(ids.map((id) => r.wait(id, { timeoutMs: 15_000 })));
    for (const [i, e] of done.entries()) expect(e).toMatchObject({ id: ids[i], status: 'completed', result: { echo: i } });
  });

  it('a wait() still pending at shutdown() settles (rejects) by the time shutdown resolves', async () => {
    const other = await Rhythm.init({ databaseUrl: db.url });
    const id = await other.enqueue('nobody-serves', {}, { queue: Q });
    const counter = countWaitReads(other);
    // The outcome is observed from the start, so the rejection is never unhandled.
    const outcome = other.wait(id, { timeoutMs: 30_000 }).then(
      () => 'resolved' as const,
      (e: unknown) => e,
    );
    await await counter.state.first; // the wait is registered and has read its execution once
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

describe('waitMany()', () => {
  it('returns the executions in the order of the ids, duplicates included, once all have finished', async () => {
    const ids = await r.enqueueMany([0, 1, 2].map((i) => ({ name: 'quick', payload: i, options: { queue: Q } })));
    const gated = await r.enqueue('gated', { key: 'many' }, { queue: Q });
    const order = [ids[2]!, gated, ids[0]!, ids[2]!, ids[1]!];
    const waiting = r.waitMany(order, { timeoutMs: 10_000 });
    await gate('many').started.promise;
    expect(await isSettled(waiting)).toBe(false); // one of them is still running
    gate('many').release.resolve();
    const done = await waiting;
    expect(done.map((e) => e.id)).toEqual(order);
    expect(done.map((e) => e.result)).toEqual([{ echo: 2 }, { released: 'many' }, { echo: 0 }, { echo: 2 }, { echo: 1 }]);
    for (const e of done) expect(e.status).toBe('completed');
    // The real stored rows: what get() returns for each.
    for (const e of done) expect(e).toEqual(await r.get(e.id));
  });

  it('an empty list resolves with an empty list', async () => {
    expect(await r.waitMany([])).toEqual([]);
  });

  it('rejects naming an id that does not exist', async () => {
    const [id] = await r.enqueueMany([{ name: 'quick', payload: 'x', options: { queue: Q } }]);
    await expect(r.waitMany([id!, '987654322'], { timeoutMs: 10_000 })).rejects.toThrow(/no execution with id 987654322/);
  });

  it('rejects with WaitTimeoutError saying how many had not finished, and which first', async () => {
    const [done] = await r.enqueueMany([{ name: 'quick', payload: 'y', options: { queue: Q } }]);
    await r.wait(done!, { timeoutMs: 10_000 });
    const stuck = await r.enqueueMany([1, 2].map((i) => ({ name: 'nobody-serves', payload: i, options: { queue: Q } })));
    const err = await r.waitMany([done!, stuck[1]!, stuck[0]!], { timeoutMs: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WaitTimeoutError);
    expect((err as Error).message).toBe(`2 of 3 executions did not finish within 200 ms (the first in order: ${stuck[1]})`);
    for (const id of stuck) expect(await r.cancel(id)).toBe(true);
  });

  it('with timeoutMs 0 reads once: resolves if all have finished, else rejects at once', async () => {
    const ids = await r.enqueueMany([1, 2].map((i) => ({ name: 'quick', payload: i, options: { queue: Q } })));
    await r.waitMany(ids, { timeoutMs: 10_000 });
    expect((await r.waitMany(ids, { timeoutMs: 0 })).map((e) => e.id)).toEqual(ids);
    expect((await r.wait(ids[0]!, { timeoutMs: 0 })).id).toBe(ids[0]);

    const stuck = await r.enqueue('nobody-serves', {}, { queue: Q });
    await expect(r.waitMany([ids[0]!, stuck], { timeoutMs: 0 })).rejects.toThrow(WaitTimeoutError);
    await expect(r.wait(stuck, { timeoutMs: 0 })).rejects.toThrow(`execution ${stuck} did not finish within 0 ms`);
    expect(await r.cancel(stuck)).toBe(true);
  });

  it('a waitMany and a wait on the same id each get the execution', async () => {
    const id = await r.enqueue('gated', { key: 'shared' }, { queue: Q });
    const one = r.wait(id, { timeoutMs: 10_000 });
    const many = r.waitMany([id, id], { timeoutMs: 10_000 });
    await gate('shared').started.promise;
    gate('shared').release.resolve();
    const [e, [e1, e2]] = await Promise.all([one, many]);
    expect(e).toMatchObject({ id, status: 'completed', result: { released: 'shared' } });
    expect(e1).toEqual(e);
    expect(e2).toEqual(e);
  });
});
