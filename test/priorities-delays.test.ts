/**
 * Priorities (higher first, then oldest first) and delays (delayMs / runAt: never before the
 * time; promoted by the internal worker, which wakes the dispatcher by NOTIFY).
 * Workers here poll only once a minute, so a wake-up that arrives in time came by NOTIFY.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rhythm, Worker } from 'rhythm';
import { count, fixture, freshRhythm, until, type TestDatabase } from './helpers.js';

const NO_POLL = 60_000;
let db: TestDatabase;
let r: Rhythm;

beforeAll(async () => {
  ({ db, r } = await freshRhythm());
});
afterAll(async () => {
  await r?.shutdown();
  await db?.drop();
});

describe('priorities', () => {
  // [label, priority] in enqueue order
  const plan: [string, number][] = [
    ['p0-a', 0],
    ['p5-a', 5],
    ['pneg-a', -1],
    ['p10', 10],
    ['p5-b', 5],
    ['p0-b', 0],
    ['pneg-b', -1],
    ['p5-c', 5],
    ['p100', 100],
  ];
  const expected = ['p100', 'p10', 'p5-a', 'p5-b', 'p5-c', 'p0-a', 'p0-b', 'pneg-a', 'pneg-b'];

  it('a worker taking one at a time runs higher priority first, then oldest first', async () => {
    const ids = await r.enqueueMany(
      plan.map(([label, priority]) => ({ name: 'record', payload: label, options: { queue: 'prio', priority } })),
    );
    // Nothing runs yet: all are queued, none claimed.
    expect(await count(r, r.names.executions, "status = 'queued' AND queue = 'prio'")).toBe(plan.length);

    const order: string[] = [];
    const w = new Worker(r, { queue: 'prio', concurrency: 1, batchSize: 1, pollIntervalMs: NO_POLL });
    w.task('record', async (label: string) => {
      order.push(label);
      return label;
    });
    const running = w.start();
    try {
      const done = await Promise.all(ids.map((id) => r.wait(id, { timeoutMs: 10_000 })));
      for (const e of done) expect(e.status).toBe('completed');
      expect(order).toEqual(expected);
      // The history agrees: each started after the one before it in priority order.
      const started = new Map(done.map((e) => [e.payload as string, e.startedAt!.getTime()]));
      for (let i = 1; i < expected.length; i++) expect(started.get(expected[i]!)!).toBeGreaterThanOrEqual(started.get(expected[i - 1]!)!);
    } finally {
      await w.stop();
      await running;
    }
  });

  it('the same order holds on a thread-pool worker', async () => {
    const ids = await r.enqueueMany(
      plan.map(([label, priority]) => ({ name: 'echo', payload: label, options: { queue: 'prio-threads', priority } })),
    );
    const w = new Worker(r, { queue: 'prio-threads', threads: 1, concurrency: 1, batchSize: 1, pollIntervalMs: NO_POLL });
    w.task('echo', fixture('echo.js'));
    const running = w.start();
    try {
      const done = await Promise.all(ids.map((id) => r.wait(id, { timeoutMs: 10_000 })));
      for (const e of done) expect(e.status).toBe('completed');
      // One at a time, so claim times (started_at) give the run order.
      const byStart = [...done].sort((a, b) => a.startedAt!.getTime() - b.startedAt!.getTime() || 0);
      expect(byStart.map((e) => e.payload)).toEqual(expected);
    } finally {
      await w.stop();
      await running;
    }
  });
});

describe('delays', () => {
  let worker: Worker;
  let running: Promise<void>;
  const ranAt = new Map<string, number>();

  beforeAll(async () => {
    await r.startInternalWorker({ tickMs: 50 });
    worker = new Worker(r, { queue: 'delays', pollIntervalMs: NO_POLL });
    worker.task('record', async (_p, ctx) => {
      ranAt.set(ctx.id, Date.now());
      return 'ran';
    });
    running = worker.start();
  });
  afterAll(async () => {
    await worker?.stop();
    await running;
  });

  it('delayMs: scheduled at enqueue, runs once due, not before', async () => {
    const before = Date.now();
    const id = await r.enqueue('record', {}, { queue: 'delays', delayMs: 300 });
    const scheduled = (await r.get(id))!;
    expect(scheduled.status).toBe('scheduled');
    expect(scheduled.runAt.getTime() - scheduled.createdAt.getTime()).toBe(300);
    expect(await count(r, r.names.scheduledQueue, 'execution_id = $1', [id])).toBe(1);
    expect(await count(r, r.names.workQueue, 'execution_id = $1', [id])).toBe(0);

    const e = await r.wait(id, { timeoutMs: 10_000 });
    expect(e.status).toBe('completed');
    expect(e.startedAt!.getTime()).toBeGreaterThanOrEqual(e.runAt.getTime());
    expect(ranAt.get(id)!).toBeGreaterThanOrEqual(before + 300);
    expect(await count(r, r.names.scheduledQueue, 'execution_id = $1', [id])).toBe(0);
  });

  it('runAt: scheduled for that exact time, runs once due, not before', async () => {
    const runAt = new Date(Date.now() + 400);
    const id = await r.enqueue('record', {}, { queue: 'delays', runAt });
    const scheduled = (await r.get(id))!;
    expect(scheduled.status).toBe('scheduled');
    expect(scheduled.runAt.getTime()).toBe(runAt.getTime());

    const e = await r.wait(id, { timeoutMs: 10_000 });
    expect(e.status).toBe('completed');
    expect(e.startedAt!.getTime()).toBeGreaterThanOrEqual(runAt.getTime());
    expect(ranAt.get(id)!).toBeGreaterThanOrEqual(runAt.getTime());
  });

  it('a runAt in the past (or delayMs 0) is ready at once', async () => {
    const past = await r.enqueue('record', {}, { queue: 'delays', runAt: new Date(Date.now() - 60_000) });
    const zero = await r.enqueue('record', {}, { queue: 'delays', delayMs: 0 });
    for (const id of [past, zero]) expect((await r.wait(id, { timeoutMs: 10_000 })).status).toBe('completed');
  });

  it('a task delayed by an hour is still scheduled after later tasks ran', async () => {
    const delayed = await r.enqueue('record', {}, { queue: 'delays', delayMs: 3_600_000 });
    const now1 = await r.enqueue('record', {}, { queue: 'delays' });
    const now2 = await r.enqueue('record', {}, { queue: 'delays', priority: -10 });
    await r.wait(now1, { timeoutMs: 10_000 });
    await r.wait(now2, { timeoutMs: 10_000 });
    expect(await r.get(delayed)).toMatchObject({ status: 'scheduled', attempts: 0, startedAt: null });
    expect(ranAt.has(delayed)).toBe(false);
    expect(await r.cancel(delayed)).toBe(true);
    expect(await count(r, r.names.scheduledQueue, 'execution_id = $1', [delayed])).toBe(0);
  });

  it('many delayed tasks due at once are all promoted and run', async () => {
    const runAt = new Date(Date.now() + 200);
    const ids = await r.enqueueMany(
      Array.from({ length: 200 }, (_, i) => ({ name: 'record', payload: i, options: { queue: 'delays', runAt } })),
    );
    const done = await Promise.all(ids.map((id) => r.wait(id, { timeoutMs: 10_000 })));
    for (const e of done) {
      expect(e.status).toBe('completed');
      expect(ranAt.get(e.id)!).toBeGreaterThanOrEqual(runAt.getTime());
    }
  });
});

describe('without an internal worker', () => {
  it('a due task stays scheduled until some process runs the internal worker', async () => {
    // A schema of its own, so the internal worker of the other tests cannot promote it.
    const solo = await Rhythm.init({ databaseUrl: db.url, schema: 'no_internal' });
    const w = new Worker(solo, { queue: 'default', pollIntervalMs: NO_POLL });
    w.task('t', async () => 'ran');
    const running = w.start();
    try {
      const delayed = await solo.enqueue('t', {}, { delayMs: 100 });
      // Time itself is the event here: wait (bounded) until the database clock passes run_at.
      await until('the delayed task to be due', async () => {
        const res = await solo.pool.query(`SELECT run_at <= now() AS due FROM ${solo.names.executions} WHERE id = $1`, [delayed]);
        return res.rows[0].due as boolean;
      });
      const immediate = await solo.enqueue('t', {});
      await solo.wait(immediate, { timeoutMs: 10_000 });
      expect((await solo.get(delayed))!.status).toBe('scheduled');

      await solo.startInternalWorker({ tickMs: 50 });
      const e = await solo.wait(delayed, { timeoutMs: 10_000 });
      expect(e).toMatchObject({ status: 'completed', result: 'ran', attempts: 1 });
    } finally {
      await solo.shutdown();
      await running;
    }
  });
});
