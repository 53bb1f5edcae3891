/**
 * Failures on the thread pool: a task module that throws (stored, retried), a thread that
 * dies (after each, the same worker goes on serving other tasks), and modules that cannot be
 * loaded or have no handler, which stop their worker's start with a clear ModuleLoadError.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ModuleLoadError, type Rhythm, Worker } from 'rhythm';
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
  for (const f of ['echo.js', 'throws.js', 'import-throws.js', 'no-handler.js', 'syntax-error.js', 'missing-import.js', 'exit.js']) {
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
    // The first task waits for the threads to start (slow on a loaded machine).
    const e = await r.wait(id, { timeoutMs: 45_000 });
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

  it("that throws then succeeds on a retry: completed with the later attempt's result", async () => {
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
    const items = Array.from({ length: 60 }, (_, n) => ({
      name: 'fail-some',
      payload: { n, fail: n % 7 === 3 },
      options: { queue: Q, maxAttempts: 1 },
    }));
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

describe('a task module that cannot be used: worker.start() fails with a ModuleLoadError, before claiming anything', () => {
  /** Starts a worker on its own queue with the good echo module and the given broken one. */
  async function startFails(file: string): Promise<Error> {
    const queue = `broken-${file.replace(/\W/g, '-')}`;
    const id = await r.enqueue('echo', { never: 'run' }, { queue });
    const w = new Worker(r, { queue, threads: 1 });
    w.task('echo', fixture('echo.js'));
    w.task('broken', fixture(file));
    const error = await w.start().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(ModuleLoadError);
    const message = (error as Error).message;
    expect(message).toContain(`queue ${JSON.stringify(queue)} cannot start`);
    expect(message).toContain('task "broken"');
    expect(message).toContain(file);
    // Nothing was claimed: the echo task waits for a worker that can start.
    expect((await r.get(id))?.status).toBe('queued');
    return error as Error;
  }

  it('throws while being imported: the error names the task, the module and the cause', async () => {
    expect((await startFails('import-throws.js')).message).toContain('boom while loading this module');
    await workerStillServes();
  });

  it('has a syntax error', async () => {
    expect((await startFails('syntax-error.js')).message).toMatch(/SyntaxError|Unexpected|Parse error/);
  });

  it('imports a module that does not exist', async () => {
    expect((await startFails('missing-import.js')).message).toMatch(/Cannot find (module|package) .*no-such-module-here/);
  });

  it('exports no handler function: the error says what to export', async () => {
    const message = (await startFails('no-handler.js')).message;
    expect(message).toMatch(/has no handler/);
    expect(message).toMatch(/default/);
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
