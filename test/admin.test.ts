/**
 * The admin API: status() counts per queue and task, list() pages (filters, cursor stability
 * while rows arrive), retry() of failed and cancelled executions with their attempt history
 * kept, cancel() by ids and by filter, and the errors catalogue as stored. Each test uses
 * queues of its own, so the figures it reads are its own.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  CancelledError,
  LeaseExpiredError,
  ModuleLoadError,
  NonRetryableError,
  ResultRejectedError,
  Rhythm,
  RhythmError,
  RhythmValidationError,
  ThreadCrashError,
  Worker,
  type Execution,
  type TaskContext,
} from 'rhythm';
import { readFileSync } from 'node:fs';
import { deferred, fixture, freshRhythm, type TestDatabase } from './helpers.js';
import { MIGRATION_FILES } from './support/migrations.js';

let db: TestDatabase;
let r: Rhythm;
const stops: Promise<void>[] = [];
/** Whether the 'flaky' task fails (it succeeds once the test fixes the "bug"). */
let flakyFails = true;
/** Release functions of running 'block' attempts, by execution id. */
const blocked = new Map<string, () => void>();

class FlakyError extends Error {
  override name = 'FlakyError';
}
class PaymentDeclined extends NonRetryableError {
  override name = 'PaymentDeclined';
}

/** Runs until released, or until its signal aborts (cancel). */
async function block(_p: unknown, ctx: TaskContext): Promise<string> {
  const released = deferred();
  blocked.set(ctx.id, () => released.resolve());
  await new Promise<void>((resolve, reject) => {
    released.promise.then(resolve);
    ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
  });
  return `released on attempt ${ctx.attempt}`;
}

beforeAll(async () => {
  ({ db, r } = await freshRhythm());
  await r.startInternalWorker({ tickMs: 25 });
  const main = new Worker(r, { queue: 'adm', concurrency: 8 });
  main.task('ok', async (p: unknown) => ({ echo: p }));
  main.task('fail', async (_p, ctx) => {
    throw new FlakyError(`attempt ${ctx.attempt} failed`);
  });
  main.task('flaky', async (_p, ctx) => {
    if (flakyFails) throw new FlakyError(`bug on attempt ${ctx.attempt}`);
    return { fixedOnAttempt: ctx.attempt };
  });
  main.task('declined', async () => {
    throw new PaymentDeclined('card refused');
  });
  main.task('block', block);
  const threads = new Worker(r, { queue: 'adm-threads', threads: 1 });
  threads.task('exit', fixture('exit.js'));
  stops.push(main.start(), threads.start());
});

afterAll(async () => {
  await r?.shutdown({ timeoutMs: 1_000 });
  await Promise.all(stops);
  await db?.drop();
});

/** The report of one queue, or undefined if status() does not list it. */
async function queueReport(queue: string) {
  return (await r.status()).queues.find((q) => q.queue === queue);
}

describe('status()', () => {
  it('counts each status per queue and per task, with the oldest waiting execution', async () => {
    const Q = 'adm';
    const done = [await r.enqueue('ok', 1, { queue: Q }), await r.enqueue('ok', 2, { queue: Q })];
    const failed = await r.enqueue('fail', 0, { queue: Q, maxAttempts: 1 });
    const running = await r.enqueue('block', 0, { queue: Q });
    await Promise.all([...done, failed].map((id) => r.wait(id)));
    await vi.waitFor(() => expect(blocked.has(running)).toBe(true));
    // A queue no worker serves: queued and scheduled stay as they are.
    const before = new Date();
    await r.enqueue('idle-task', 1, { queue: 'adm-idle' });
    await r.enqueue('idle-task', 2, { queue: 'adm-idle' });
    await r.enqueue('other-task', 3, { queue: 'adm-idle', delayMs: 3_600_000 });
    const cancelled = await r.enqueue('other-task', 4, { queue: 'adm-idle', delayMs: 3_600_000 });
    expect(await r.cancel(cancelled)).toBe(true);

    const report = await r.status();
    expect(report.windowMs).toBe(3_600_000);
    expect(report.at).toBeInstanceOf(Date);
    const adm = report.queues.find((q) => q.queue === Q)!;
    expect(adm.tasks.find((t) => t.name === 'ok')).toMatchObject({ completed: 2, failed: 0, queued: 0, running: 0 });
    expect(adm.tasks.find((t) => t.name === 'fail')).toMatchObject({ completed: 0, failed: 1 });
    expect(adm.tasks.find((t) => t.name === 'block')).toMatchObject({ running: 1, queued: 0 });
    expect(adm.running).toBeGreaterThanOrEqual(1);

    const idle = report.queues.find((q) => q.queue === 'adm-idle')!;
    expect(idle).toMatchObject({ queued: 2, scheduled: 1, running: 0, completed: 0, failed: 0, cancelled: 1 });
    expect(idle.tasks.map((t) => t.name)).toEqual(['idle-task', 'other-task']);
    expect(idle.tasks[0]).toMatchObject({ name: 'idle-task', queued: 2, scheduled: 0, cancelled: 0 });
    expect(idle.tasks[1]).toMatchObject({
      name: 'other-task',
      queued: 0,
      scheduled: 1,
      cancelled: 1,
      oldestWaitingAt: null,
      oldestWaitingMs: null,
    });
    // The oldest waiting one was due when it was enqueued (database clock; allow clock skew).
    expect(idle.oldestWaitingAt!.getTime()).toBeGreaterThan(before.getTime() - 5_000);
    expect(idle.oldestWaitingMs).toBeGreaterThanOrEqual(0);
    expect(idle.oldestWaitingAt).toEqual(idle.tasks[0]!.oldestWaitingAt);

    blocked.get(running)!();
    expect((await r.wait(running)).status).toBe('completed');
  });

  it('leaves out what finished before the window', async () => {
    await r.cancel(await r.enqueue('gone', 1, { queue: 'adm-window', delayMs: 3_600_000 }));
    expect(await queueReport('adm-window')).toMatchObject({ cancelled: 1 });
    await r.pool.query(`UPDATE ${r.names.executions} SET finished_at = now() - interval '2 hours' WHERE queue = 'adm-window'`);
    expect(await queueReport('adm-window')).toBeUndefined();
    expect((await r.status({ windowMs: 3 * 3_600_000 })).queues.find((q) => q.queue === 'adm-window')).toMatchObject({ cancelled: 1 });
  });
});

describe('list()', () => {
  it('pages newest first with filters, and a cursor does not shift while rows are inserted', async () => {
    const Q = 'adm-pages';
    const ids = await r.enqueueMany(
      Array.from({ length: 120 }, (_, i) => ({ name: i % 3 === 0 ? 'a' : 'b', payload: i, options: { queue: Q, delayMs: 3_600_000 } })),
    );
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await r.list({ queue: Q, limit: 50, cursor });
      pages++;
      expect(page.items.length).toBeLessThanOrEqual(50);
      seen.push(...page.items.map((e) => e.id));
      // New executions between pages: they are newer than the cursor, so no page shows them twice or shifts.
      await r.enqueue('a', 'late', { queue: Q, delayMs: 3_600_000 });
      cursor = page.nextCursor;
    } while (cursor !== null);
    expect(pages).toBe(3);
    expect(seen).toEqual([...ids].reverse());

    const first = await r.list({ queue: Q, limit: 5 });
    expect(first.items).toHaveLength(5);
    expect(first.items.every((e) => e.queue === Q && e.status === 'scheduled' && Array.isArray(e.attemptLog))).toBe(true);
    // 120 + 3 late ones, by name and status.
    const a: Execution[] = [];
    cursor = null;
    do {
      const page = await r.list({ queue: Q, name: 'a', status: 'scheduled', limit: 7, cursor });
      a.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    expect(a).toHaveLength(40 + 3);
    expect(a.every((e) => e.name === 'a')).toBe(true);
    expect((await r.list({ queue: Q, status: ['queued', 'running'] })).items).toEqual([]);
    expect((await r.list({ queue: Q, status: ['completed', 'failed'] })).items).toEqual([]);
    expect((await r.list({ queue: Q, since: new Date(Date.now() + 60_000) })).items).toEqual([]);
    const exact = await r.list({ queue: Q, limit: 123 });
    expect(exact.items).toHaveLength(123);
    expect(exact.nextCursor).toBeNull();
  });

  it('finds running, failed and cancelled executions, with their attempt logs', async () => {
    const Q = 'adm';
    const failed = await r.enqueue('fail', 'listed', { queue: Q, maxAttempts: 2 });
    expect((await r.wait(failed)).status).toBe('failed');
    const running = await r.enqueue('block', 'listed', { queue: Q });
    await vi.waitFor(() => expect(blocked.has(running)).toBe(true));

    const failures = await r.list({ queue: Q, name: 'fail', status: 'failed', limit: 1 });
    expect(failures.items[0]).toMatchObject({ id: failed, status: 'failed', attempts: 2 });
    expect(failures.items[0]!.attemptLog.map((a) => [a.attempt, a.outcome, a.error?.name])).toEqual([
      [1, 'failed', 'FlakyError'],
      [2, 'failed', 'FlakyError'],
    ]);
    expect((await r.list({ status: 'running', name: 'block' })).items.map((e) => e.id)).toEqual([running]);
    expect((await r.list({ status: 'queued', name: 'block' })).items).toEqual([]);
    blocked.get(running)!();
    await r.wait(running);
  });
});

describe('retry()', () => {
  it('runs a failed execution again as a new attempt that completes, keeping its history', async () => {
    flakyFails = true;
    const id = await r.enqueue('flaky', {}, { queue: 'adm', maxAttempts: 2 });
    const failed = await r.wait(id);
    expect(failed).toMatchObject({ status: 'failed', attempts: 2, maxAttempts: 2 });
    expect(failed.attemptLog).toHaveLength(2);
    const [first, second] = failed.attemptLog;
    expect(first).toMatchObject({ attempt: 1, outcome: 'failed', error: { name: 'FlakyError', message: 'bug on attempt 1' } });
    expect(first!.error!.stack).toContain('FlakyError');
    expect(first!.workerId).toEqual(expect.any(String));
    expect(first!.startedAt).toBeInstanceOf(Date);
    expect(first!.finishedAt.getTime()).toBeGreaterThanOrEqual(first!.startedAt!.getTime());
    expect(second).toMatchObject({ attempt: 2, outcome: 'failed' });
    expect((await r.list({ status: 'failed', name: 'flaky' })).items.map((e) => e.id)).toContain(id);

    flakyFails = false; // the bug is fixed
    expect(await r.retry([id])).toEqual({ retried: [id], skipped: [] });
    const done = await r.wait(id);
    expect(done).toMatchObject({ status: 'completed', attempts: 3, maxAttempts: 3, result: { fixedOnAttempt: 3 }, error: null });
    expect(done.attemptLog).toEqual(failed.attemptLog);
    expect((await r.list({ status: 'failed', name: 'flaky' })).items.map((e) => e.id)).not.toContain(id);
  });

  it('skips completed, unfinished and missing executions, and reports them', async () => {
    const completed = await r.enqueue('ok', 1, { queue: 'adm' });
    await r.wait(completed);
    const scheduled = await r.enqueue('ok', 2, { queue: 'adm-idle', delayMs: 3_600_000 });
    const queued = await r.enqueue('ok', 3, { queue: 'adm-idle' });
    const missing = '999999999999';
    expect(await r.retry([completed, scheduled, queued, missing])).toEqual({
      retried: [],
      skipped: [
        { id: completed, status: 'completed' },
        { id: scheduled, status: 'scheduled' },
        { id: queued, status: 'queued' },
        { id: missing, status: null },
      ],
    });
    expect(await r.get(completed)).toMatchObject({ status: 'completed', attempts: 1, maxAttempts: 3 });
  });

  it('by filter: the failed executions of a task, with more attempts when asked', async () => {
    const ids = await Promise.all([1, 2, 3].map((i) => r.enqueue('fail', i, { queue: 'adm', maxAttempts: 1 })));
    await Promise.all(ids.map((id) => r.wait(id)));
    const cancelled = await r.enqueue('fail', 'c', { queue: 'adm', delayMs: 3_600_000 });
    await r.cancel(cancelled);

    const res = await r.retry({ queue: 'adm', name: 'fail', since: new Date(Date.now() - 60_000) }, { attempts: 2 });
    // The default status is failed: the cancelled one is not part of it.
    expect(res.retried).toEqual(expect.arrayContaining(ids));
    expect(res.retried).not.toContain(cancelled);
    for (const id of ids) {
      const e = await r.wait(id);
      expect(e).toMatchObject({ status: 'failed', attempts: 3, maxAttempts: 3 });
      expect(e.attemptLog.map((a) => a.attempt)).toEqual([1, 2, 3]);
    }
    expect((await r.retry({ name: 'fail', status: 'cancelled' })).retried).toEqual([cancelled]);
  });

  it('keeps the last error of an execution that failed before attempt logs existed', async () => {
    flakyFails = true;
    const id = await r.enqueue('flaky', {}, { queue: 'adm', maxAttempts: 1 });
    const failed = await r.wait(id);
    await r.pool.query(`UPDATE ${r.names.executions} SET attempt_log = NULL WHERE id = $1`, [id]);
    flakyFails = false;
    await r.retry([id]);
    const done = await r.wait(id);
    expect(done.status).toBe('completed');
    expect(done.attemptLog).toEqual([{ ...failed.attemptLog[0], workerId: null }]);
  });
});

describe('cancel()', () => {
  it('by filter: every unfinished execution of a queue in one call', async () => {
    const Q = 'adm-cancel';
    const scheduled = await r.enqueueMany(
      Array.from({ length: 5 }, (_, i) => ({ name: 'x', payload: i, options: { queue: Q, delayMs: 3_600_000 } })),
    );
    const queued = await r.enqueueMany(Array.from({ length: 3 }, (_, i) => ({ name: 'y', payload: i, options: { queue: Q } })));
    const other = await r.enqueue('x', 'other queue', { queue: 'adm-idle', delayMs: 3_600_000 });

    const res = await r.cancel({ queue: Q, status: 'queued' });
    expect(res).toEqual({ cancelled: queued, skipped: [] });
    expect((await r.cancel({ queue: Q })).cancelled).toEqual(scheduled);
    for (const id of [...scheduled, ...queued]) {
      expect(await r.get(id)).toMatchObject({ status: 'cancelled', error: { name: 'CancelledError' }, attemptLog: [] });
    }
    expect((await r.get(other))!.status).toBe('scheduled');
    expect(await queueReport(Q)).toMatchObject({ scheduled: 0, queued: 0, cancelled: 8 });
    expect((await r.list({ queue: Q, status: 'cancelled', limit: 1000 })).items).toHaveLength(8);
  });

  it('by ids: cancels the unfinished ones and reports the others; cancel(id) still says true or false', async () => {
    const done = await r.enqueue('ok', 1, { queue: 'adm' });
    await r.wait(done);
    const waiting = await r.enqueue('ok', 2, { queue: 'adm-idle', delayMs: 3_600_000 });
    expect(await r.cancel([done, waiting, waiting])).toEqual({ cancelled: [waiting], skipped: [{ id: done, status: 'completed' }] });
    expect(await r.cancel(waiting)).toBe(false);
    expect(await r.cancel(await r.enqueue('ok', 3, { queue: 'adm-idle' }))).toBe(true);
  });

  it('a running execution keeps its attempt count and start time, and the attempt is logged', async () => {
    const id = await r.enqueue('block', 'to cancel', { queue: 'adm' });
    await vi.waitFor(() => expect(blocked.has(id)).toBe(true));
    const running = (await r.get(id))!;
    expect(running).toMatchObject({ status: 'running', attempts: 1 });
    expect(await r.cancel(id)).toBe(true);

    const e = (await r.get(id))!;
    expect(e).toMatchObject({ status: 'cancelled', attempts: 1, error: { name: 'CancelledError' } });
    expect(e.startedAt).toEqual(running.startedAt);
    expect(e.attemptLog).toHaveLength(1);
    expect(e.attemptLog[0]).toMatchObject({
      attempt: 1,
      outcome: 'cancelled',
      error: { name: 'CancelledError' },
      workerId: expect.any(String),
    });
    expect(e.attemptLog[0]!.startedAt).toEqual(running.startedAt);

    // Retried, it runs as attempt 2 (released this time), its history kept.
    blocked.delete(id);
    expect((await r.retry([id])).retried).toEqual([id]);
    await vi.waitFor(() => expect(blocked.has(id)).toBe(true));
    blocked.get(id)!();
    expect(await r.wait(id)).toMatchObject({ status: 'completed', attempts: 2, result: 'released on attempt 2', attemptLog: e.attemptLog });
  });
});

describe('the admin migration', () => {
  it('on a schema with history, makes its failed and cancelled executions listable and retryable', async () => {
    // A schema as the previous version left it: migrations 1 and 2, and some history.
    const c = await r.pool.connect();
    try {
      await c.query('CREATE SCHEMA older; SET search_path TO older');
      for (const file of MIGRATION_FILES.slice(0, 2))
        await c.query(readFileSync(new URL(`../migrations/${file}`, import.meta.url), 'utf8'));
      await c.query('CREATE TABLE migrations (id integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
      await c.query('INSERT INTO migrations (id, name) VALUES (1, $1), (2, $2)', MIGRATION_FILES.slice(0, 2));
      await c.query(`INSERT INTO executions (name, queue, status, payload, attempts, max_attempts, error, started_at, finished_at) VALUES
        ('t', 'q', 'failed', '{}', 2, 2, '{"name":"OldError","message":"before the upgrade"}', now() - interval '1 minute', now()),
        ('t', 'q', 'cancelled', '{}', 0, 3, '{"name":"CancelledError","message":"the execution was cancelled"}', NULL, now()),
        ('t', 'q', 'completed', '{}', 1, 3, NULL, now(), now())`);
    } finally {
      await c.query('RESET search_path');
      c.release();
    }
    const older = await Rhythm.init({ databaseUrl: db.url, schema: 'older' });
    try {
      const dead = await older.list({ status: ['failed', 'cancelled'] });
      expect(dead.items.map((e) => [e.status, e.attemptLog])).toEqual([
        ['cancelled', []],
        ['failed', []],
      ]);
      const [cancelled, failed] = dead.items.map((e) => e.id);
      expect(await older.retry({ queue: 'q', status: ['failed', 'cancelled'] })).toEqual({ retried: [failed, cancelled], skipped: [] });
      const e = (await older.get(failed!))!;
      expect(e).toMatchObject({ status: 'queued', attempts: 2, maxAttempts: 3, error: null });
      expect(e.attemptLog).toEqual([
        {
          attempt: 2,
          outcome: 'failed',
          workerId: null,
          error: { name: 'OldError', message: 'before the upgrade' },
          startedAt: expect.any(Date),
          finishedAt: expect.any(Date),
        },
      ]);
      expect(await older.get(cancelled!)).toMatchObject({ status: 'queued', attempts: 0, maxAttempts: 3, attemptLog: [] });
    } finally {
      await older.shutdown();
    }
  });
});

describe('bad input', () => {
  const cases: [string, () => Promise<unknown>, RegExp][] = [
    ['unknown status', () => r.list({ status: 'done' as never }), /unknown status "done"/],
    ['empty status list', () => r.list({ status: [] }), /at least one status/],
    ['limit 0', () => r.list({ limit: 0 }), /option limit must be an integer from 1 to 1000, got 0/],
    ['limit over 1000', () => r.list({ limit: 1001 }), /option limit must be an integer from 1 to 1000/],
    ['bad cursor', () => r.list({ cursor: 'not a cursor' }), /invalid cursor/],
    ['forged cursor', () => r.list({ cursor: Buffer.from('v1:abc').toString('base64url') }), /invalid cursor/],
    ['since not a Date', () => r.list({ since: '2024-01-01' as never }), /option since must be a valid Date/],
    ['unknown option', () => r.list({ queues: 'x' } as never), /unknown list option "queues"/],
    ['bad queue name', () => r.list({ queue: 'no spaces' }), /invalid queue name/],
    ['retry of no ids', () => r.retry([]), /retry needs at least one id/],
    ['cancel of no ids', () => r.cancel([]), /cancel needs at least one id/],
    ['bad id', () => r.retry(['12', 'abc']), /invalid execution id "abc"/],
    ['empty filter', () => r.cancel({}), /cancel filter must give at least one of queue, name, status or since/],
    [
      'retry of completed ones',
      () => r.retry({ status: 'completed' }),
      /"completed" cannot be selected here \(allowed: failed, cancelled\)/,
    ],
    ['cancel of failed ones', () => r.cancel({ status: 'failed' }), /"failed" cannot be selected here/],
    ['retry attempts 0', () => r.retry(['1'], { attempts: 0 }), /option attempts must be an integer from 1/],
    ['retry of a string', () => r.retry('12' as never), /retry expects an array of execution ids or a filter object/],
    ['status window 0', () => r.status({ windowMs: 0 }), /option windowMs must be an integer/],
  ];
  it.each(cases)('%s: RhythmValidationError', async (_what, call, message) => {
    const err = await call().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RhythmValidationError);
    expect((err as Error).message).toMatch(message);
  });
});

describe('errors catalogue', () => {
  it('has stable names, and every class is a RhythmError', () => {
    const classes = { CancelledError, LeaseExpiredError, ThreadCrashError, ModuleLoadError, ResultRejectedError, NonRetryableError };
    for (const [name, Class] of Object.entries(classes)) {
      const e = new Class('m');
      expect(e).toBeInstanceOf(RhythmError);
      expect(e).toBeInstanceOf(Error);
      expect(e.name).toBe(name);
      expect(String(e)).toBe(`${name}: m`);
    }
    // A subclass that does not name itself stores the name its handling depends on.
    expect(new (class extends NonRetryableError {})('m').name).toBe('NonRetryableError');
  });

  it('a thread that dies stores a ThreadCrashError, logged per attempt', async () => {
    const id = await r.enqueue('exit', { code: 7 }, { queue: 'adm-threads', maxAttempts: 2 });
    const e = await r.wait(id, { timeoutMs: 20_000 });
    expect(e.status).toBe('failed');
    expect(e.error?.name).toBe(ThreadCrashError.name);
    expect(e.error?.name).toBe('ThreadCrashError');
    expect(e.attemptLog.map((a) => a.error?.name)).toEqual(['ThreadCrashError', 'ThreadCrashError']);
  });

  it('a subclass of NonRetryableError with its own name fails at once', async () => {
    const e = await r.wait(await r.enqueue('declined', {}, { queue: 'adm', maxAttempts: 5 }));
    expect(e).toMatchObject({ status: 'failed', attempts: 1, error: { name: 'PaymentDeclined', message: 'card refused' } });
  });
});
