/**
 * Failures on the thread pool: a task module that throws (stored, retried), modules that
 * cannot be loaded or have no handler (a clear ModuleLoadError), a thread that dies. After
 * each, the same worker goes on serving other tasks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Rhythm, Worker } from 'rhythm';
import { fixture, freshRhythm, type TestDatabase } from './helpers.js';

const Q = 'threads';
let db: TestDatabase;
let r: Rhythm;
let running: Promise<void>;

/** A good task on the same worker, enqueued after a failure: proves the worker still serves. */
async function workerStillServes(): Promise<void> {
  const id = await r.enqueue('echo', { still: 'alive' }, { queue: Q });
  const e = await r.wait(id, { timeoutMs: 10_000 });
  expect(e.status).toBe('completed');
  expect(e.result).toMatchObject({ payload: { still: 'alive' }, onThread: true });
}

beforeAll(async () => {
  for (const f of ['echo.js', 'throws.js', 'import-throws.js', 'no-handler.js', 'syntax-error.js', 'exit.js']) {
    // Thread modules are loaded from the source test/ folder, not from dist.
    expect(existsSync(fileURLToPath(fixture(f)))).toBe(true);
  }
  ({ db, r } = await freshRhythm());
  await r.startInternalWorker({ tickMs: 25 });
  const w = new Worker(r, { queue: Q, threads: 2 });
  w.task('echo', fixture('echo.js'));
  w.task('named', fixture('named-handler.js'));
  w.task('throws', fixture('throws.js'));
  w.task('fail-some', fixture('fail-some.js'));
  w.task('non-retryable', fixture('non-retryable.js'));
  w.task('import-throws', fixture('import-throws.js'));
  w.task('no-handler', fixture('no-handler.js'));
  w.task('syntax-error', fixture('syntax-error.js'));
  w.task('exit', fixture('exit.js'));
  running = w.start();
});
afterAll(async () => {
  await r?.shutdown();
  await running;
  await db?.drop();
});

describe('a thread-pool task module', () => {
  it('runs on a thread with the context it was promised', async () => {
    const id = await r.enqueue('echo', { x: 1 }, { queue: Q });
    const e = await r.wait(id, { timeoutMs: 10_000 });
    expect(e.status).toBe('completed');
    expect(e.result).toEqual({
      payload: { x: 1 },
      id,
      name: 'echo',
      queue: Q,
      attempt: 1,
      hasSignal: true,
      aborted: false,
      cancelled: false,
      onThread: true,
    });
  });

  it('may export its handler as "handler" instead of default', async () => {
    const id = await r.enqueue('named', { value: 5 }, { queue: Q });
    expect((await r.wait(id, { timeoutMs: 10_000 })).result).toEqual({ named: true, value: 5, attempt: 1 });
  });

  it('that throws: the error is stored with name, message and stack, retried until maxAttempts, then failed', async () => {
    const id = await r.enqueue('throws', { tag: 'sync' }, { queue: Q, maxAttempts: 3 });
    const e = await r.wait(id, { timeoutMs: 10_000 });
    expect(e.status).toBe('failed');
    expect(e.attempts).toBe(3);
    expect(e.result).toBeNull();
    expect(e.error?.name).toBe('ThreadTaskError');
    // The stored error is the last attempt's.
    expect(e.error?.message).toBe('thread task failed on attempt 3 (sync)');
    expect(e.error?.stack).toContain('fixtures/throws.js');
    expect(e.finishedAt).toBeInstanceOf(Date);
    await workerStillServes();
  });

  it('that returns a rejected promise: handled like a throw', async () => {
    const id = await r.enqueue('throws', { tag: 'async', async: true }, { queue: Q, maxAttempts: 2 });
    const e = await r.wait(id, { timeoutMs: 10_000 });
    expect(e).toMatchObject({ status: 'failed', attempts: 2 });
    expect(e.error).toMatchObject({ name: 'ThreadTaskError', message: 'thread task failed on attempt 2 (async)' });
  });

  it('that throws then succeeds on a retry: completed with the later attempt\'s result', async () => {
    const id = await r.enqueue('throws', { tag: 'flaky', succeedOnAttempt: 2 }, { queue: Q, maxAttempts: 3 });
    const e = await r.wait(id, { timeoutMs: 10_000 });
    expect(e).toMatchObject({ status: 'completed', attempts: 2, result: { ok: true, attempt: 2 } });
  });

  it('that throws NonRetryableError: failed on the first attempt', async () => {
    const id = await r.enqueue('non-retryable', { k: 1 }, { queue: Q, maxAttempts: 5 });
    const e = await r.wait(id, { timeoutMs: 10_000 });
    expect(e).toMatchObject({ status: 'failed', attempts: 1 });
    expect(e.error).toMatchObject({ name: 'NonRetryableError', message: 'refusing payload {"k":1} on attempt 1' });
  });

  it('failing inside a micro-batch fails only its own tasks', async () => {
    const items = Array.from({ length: 60 }, (_, n) => ({ name: 'fail-some', payload: { n, fail: n % 7 === 3 }, options: { queue: Q, maxAttempts: 1 } }));
    const ids = await r.enqueueMany(items);
    const done = await Promise.all(ids.map((id) => r.wait(id, { timeoutMs: 10_000 })));
    done.forEach((e, n) => {
      if (n % 7 === 3) {
        expect(e.status).toBe('failed');
        expect(e.error?.message).toBe(`task ${n} was told to fail`);
      } else {
        expect(e.status).toBe('completed');
        expect(e.result).toEqual({ n });
      }
    });
  });
});

describe('a task module that cannot be used', () => {
  it('throws while being imported: the task fails with a ModuleLoadError naming the module and the cause', async () => {
    const id = await r.enqueue('import-throws', {}, { queue: Q, maxAttempts: 1 });
    const e = await r.wait(id, { timeoutMs: 10_000 });
    expect(e.status).toBe('failed');
    expect(e.error?.name).toBe('ModuleLoadError');
    expect(e.error?.message).toContain('import-throws.js');
    expect(e.error?.message).toContain('boom while loading this module');
    await workerStillServes();
  });

  it('throws while being imported, with retries: every attempt fails the same way, then failed', async () => {
    const id = await r.enqueue('import-throws', {}, { queue: Q, maxAttempts: 2 });
    const e = await r.wait(id, { timeoutMs: 10_000 });
    expect(e).toMatchObject({ status: 'failed', attempts: 2 });
    expect(e.error?.name).toBe('ModuleLoadError');
  });

  it('has a syntax error: ModuleLoadError', async () => {
    const id = await r.enqueue('syntax-error', {}, { queue: Q, maxAttempts: 1 });
    const e = await r.wait(id, { timeoutMs: 10_000 });
    expect(e.status).toBe('failed');
    expect(e.error?.name).toBe('ModuleLoadError');
    expect(e.error?.message).toContain('syntax-error.js');
    await workerStillServes();
  });

  it('exports no handler function: ModuleLoadError saying what to export', async () => {
    const id = await r.enqueue('no-handler', {}, { queue: Q, maxAttempts: 1 });
    const e = await r.wait(id, { timeoutMs: 10_000 });
    expect(e.status).toBe('failed');
    expect(e.error?.name).toBe('ModuleLoadError');
    expect(e.error?.message).toContain('no-handler.js');
    expect(e.error?.message).toMatch(/has no handler/);
    expect(e.error?.message).toMatch(/default/);
    await workerStillServes();
  });
});

describe('a thread that dies under its task', () => {
  it('fails the task with ThreadCrashError, retries it, and the pool keeps serving', async () => {
    const id = await r.enqueue('exit', { code: 3 }, { queue: Q, maxAttempts: 2 });
    const e = await r.wait(id, { timeoutMs: 15_000 });
    expect(e).toMatchObject({ status: 'failed', attempts: 2 });
    expect(e.error?.name).toBe('ThreadCrashError');
    expect(e.error?.message).toMatch(/thread running this task died/);
    expect(e.error?.message).toMatch(/code:? 3/);
    await workerStillServes();
  });

  it('in a micro-batch: only the crashing task fails; its batch-mates are re-run and complete', async () => {
    const items = [
      ...Array.from({ length: 30 }, (_, n) => ({ name: 'echo', payload: { n }, options: { queue: Q, maxAttempts: 1 } })),
      { name: 'exit', payload: { code: 4 }, options: { queue: Q, maxAttempts: 1 } },
      ...Array.from({ length: 30 }, (_, n) => ({ name: 'echo', payload: { n: 30 + n }, options: { queue: Q, maxAttempts: 1 } })),
    ];
    const ids = await r.enqueueMany(items);
    const done = await Promise.all(ids.map((id) => r.wait(id, { timeoutMs: 15_000 })));
    const crashed = done[30]!;
    expect(crashed).toMatchObject({ status: 'failed', attempts: 1 });
    expect(crashed.error?.name).toBe('ThreadCrashError');
    const others = done.filter((_, i) => i !== 30);
    for (const e of others) expect(e).toMatchObject({ status: 'completed', attempts: 1 });
    expect(others.map((e) => (e.result as { payload: { n: number } }).payload.n)).toEqual(Array.from({ length: 60 }, (_, n) => n));
  });
});
