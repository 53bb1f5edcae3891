/**
 * Thread faults in a Worker's Piscina pool: a thread that calls process.exit and a thread that
 * exceeds its resourceLimits (that task's attempt fails and is retried like any failure, the
 * pool replaces the dead thread, and the worker goes on serving: a well-behaved task
 * afterwards completes); and a task module that throws while loading, which stops its
 * worker's start before anything is claimed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { ModuleLoadError, Rhythm, Worker } from 'rhythm';
import { createMigratedTestDatabase, type TestDatabaseHandle } from './support/db.js';
import { installProbes } from './fixtures/fault/harness.js';

const FIXTURES = new URL('./fixtures/fault/', import.meta.url);
const QUEUE = 'threads';

describe('thread faults', () => {
  let db: TestDatabaseHandle;
  let r: Rhythm;
  let running: Promise<void>;
  const logs: { msg: string; tasks?: number }[] = [];

  beforeAll(async () => {
    db = await createMigratedTestDatabase('rhythm_fault_threads');
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line));
        done();
      },
    });
    r = await Rhythm.init({ databaseUrl: db.url, retryBackoff: { baseMs: 20, maxMs: 100 }, logger: pino({ level: 'warn' }, sink) });
    await installProbes(r.pool, r.names);
    await r.startInternalWorker({ tickMs: 100 });
    // One thread, so "the thread was replaced" shows as a new threadId.
    const w = new Worker(r, { queue: QUEUE, threads: 1, resourceLimits: { maxOldGenerationSizeMb: 16 }, abortGraceMs: 500 });
    w.task('ok', new URL('thread-ok.js', FIXTURES));
    w.task('exit', new URL('thread-exit.js', FIXTURES));
    w.task('maybe-exit', new URL('thread-maybe-exit.js', FIXTURES));
    w.task('oom', new URL('thread-oom.js', FIXTURES));
    running = w.start();
  });
  afterAll(async () => {
    await r?.shutdown();
    await running;
    await db?.drop();
  });

  async function okThread(): Promise<number> {
    const e = await r.wait<{ threadId: number }>(await r.enqueue('ok', { probe: true }, { queue: QUEUE }), { timeoutMs: 15_000 });
    expect(e.status).toBe('completed');
    return e.result!.threadId;
  }

  /** The errors of the failed attempts that were retried (status changes to 'scheduled'). */
  async function retriedErrors(id: string): Promise<{ name: string; message: string }[]> {
    const res = await r.pool.query(
      `SELECT error FROM public.fault_transitions WHERE execution_id = $1 AND new_status = 'scheduled' ORDER BY at`,
      [id],
    );
    return res.rows.map((row) => row.error);
  }

  it('process.exit in a thread: the task fails and is retried, the thread is replaced, the worker goes on', async () => {
    const before = await okThread();
    const id = await r.enqueue('exit', {}, { queue: QUEUE, maxAttempts: 2 });
    const e = await r.wait(id, { timeoutMs: 20_000 });
    expect(e.status).toBe('failed');
    expect(e.attempts).toBe(2);
    expect(e.error).toMatchObject({ name: 'ThreadCrashError', message: expect.stringMatching(/exited with code: 3/) });
    const retried = await retriedErrors(id);
    expect(retried).toHaveLength(1);
    expect(retried[0]).toMatchObject({ name: 'ThreadCrashError' });
    const after = await okThread();
    expect(after).not.toBe(before);
  });

  it('a module that throws at load: its worker does not start (ModuleLoadError), its task stays queued, the other worker goes on', async () => {
    const before = await okThread();
    const id = await r.enqueue('throws-at-load', {}, { queue: 'threads-broken', maxAttempts: 2 });
    const broken = new Worker(r, { queue: 'threads-broken', threads: 1 });
    broken.task('throws-at-load', new URL('thread-throws-at-load.js', FIXTURES));
    const error = await broken.start().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(ModuleLoadError);
    expect((error as Error).message).toMatch(/"throws-at-load".*thread-throws-at-load\.js.*refuses to load/);
    expect((await r.get(id))?.status).toBe('queued');
    expect(await okThread()).toBe(before);
  });

  it('a thread that exceeds resourceLimits: the task fails and is retried, the thread is replaced, the worker goes on', async () => {
    const before = await okThread();
    const id = await r.enqueue('oom', {}, { queue: QUEUE, maxAttempts: 2 });
    const e = await r.wait(id, { timeoutMs: 30_000 });
    expect(e.status).toBe('failed');
    expect(e.attempts).toBe(2);
    expect(e.error).toMatchObject({ name: 'ThreadCrashError', message: expect.stringMatching(/memory/i) });
    expect(await retriedErrors(id)).toEqual([expect.objectContaining({ name: 'ThreadCrashError' })]);
    const after = await okThread();
    expect(after).not.toBe(before);
  });

  it('a crash inside a micro-batch fails only the crashing task; its batch-mates complete on their first attempt', async () => {
    // Measured as fast first, so the next ones travel many to a message (one micro-batch).
    for (let i = 0; i < 3; i++) {
      expect((await r.wait(await r.enqueue('maybe-exit', { i }, { queue: QUEUE }), { timeoutMs: 15_000 })).status).toBe('completed');
    }
    const items = Array.from({ length: 60 }, (_, i) => ({
      name: 'maybe-exit',
      payload: { i, exit: i === 10 },
      options: { queue: QUEUE, maxAttempts: 1 },
    }));
    const ids = await r.enqueueMany(items);
    const all = await Promise.all(ids.map((id) => r.wait(id, { timeoutMs: 20_000 })));
    expect(all[10]).toMatchObject({ status: 'failed', attempts: 1, error: expect.objectContaining({ name: 'ThreadCrashError' }) });
    const others = all.filter((_, i) => i !== 10);
    expect(others.filter((e) => e.status !== 'completed' || e.attempts !== 1).map((e) => [e.id, e.status, e.attempts])).toEqual([]);
    // The crash did hit a batch: its unfinished tasks were sent again.
    expect(logs.some((l) => /thread died under a batch; sending its unfinished tasks again/.test(l.msg) && (l.tasks ?? 0) > 1)).toBe(true);
    expect(await okThread()).toEqual(expect.any(Number));
  });
});
