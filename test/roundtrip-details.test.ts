/**
 * The round trip in detail, on both executors: what a handler receives (payload, ctx), what
 * get() and wait() return at each stage, enqueueMany's ids in order, and the queues left
 * empty afterwards. (test/roundtrip.test.ts is the short version.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Rhythm, Worker, type TaskContext } from 'rhythm';
import { count, deferred, fixture, freshRhythm, until, type TestDatabase } from './helpers.js';
import echo from './fixtures/echo.js';

let db: TestDatabase;
let r: Rhythm;
let running: Promise<unknown>;
const hold = new Map<number, ReturnType<typeof deferred>>();
const holding = new Map<number, ReturnType<typeof deferred>>();
const aborts = new Map<number, unknown>();

beforeAll(async () => {
  ({ db, r } = await freshRhythm());
  const io = new Worker(r, { queue: 'io' });
  // The same handler the thread-pool worker loads as a module, here as a main-thread function.
  io.task('echo', echo);
  io.task('held', async (payload: { n: number }) => {
    holding.get(payload.n)?.resolve();
    await hold.get(payload.n)?.promise;
    return payload.n;
  });
  io.task('returns-null', () => null);
  io.task('until-aborted', (payload: { n: number }, ctx: TaskContext) => {
    holding.get(payload.n)?.resolve();
    return new Promise((_resolve, reject) =>
      ctx.signal.addEventListener('abort', () => {
        aborts.set(payload.n, ctx.signal.reason);
        reject(ctx.signal.reason);
      }),
    );
  });
  io.task('sync', (payload: { a: number; b: number }) => payload.a + payload.b);
  const cpu = new Worker(r, { queue: 'cpu', threads: 2 });
  cpu.task('echo', fixture('echo.js'));
  // A module may also be given as a path string (relative to the working directory).
  cpu.task('echo-by-path', 'test/fixtures/echo.js');
  running = Promise.all([io.start(), cpu.start()]);
});
afterAll(async () => {
  await r?.shutdown();
  await running;
  await db?.drop();
});

describe.each([
  ['main thread', 'io', false],
  ['thread pool', 'cpu', true],
] as const)('round trip on the %s', (_label, queue, onThread) => {
  it('the handler gets the payload and a context; the result is stored on the execution', async () => {
    const payload = { nested: { list: [1, 'two', null] }, unicode: 'ü🎵', big: 2 ** 53 - 1 };
    const id = await r.enqueue('echo', payload, { queue });
    const e = await r.wait(id, { timeoutMs: 10_000 });
    expect(e).toMatchObject({
      id,
      kind: 'task',
      name: 'echo',
      queue,
      status: 'completed',
      payload,
      error: null,
      attempts: 1,
      maxAttempts: 3,
      priority: 0,
      parentId: null,
    });
    expect(e.result).toEqual({
      payload,
      id,
      name: 'echo',
      queue,
      attempt: 1,
      hasSignal: true,
      aborted: false,
      cancelled: false,
      onThread,
    });
    expect(e.createdAt.getTime()).toBeLessThanOrEqual(e.startedAt!.getTime());
    expect(e.startedAt!.getTime()).toBeLessThanOrEqual(e.finishedAt!.getTime());
    expect(await r.get(id)).toEqual(e);
    expect(await count(r, r.names.workQueue, 'execution_id = $1', [id])).toBe(0);
  });

  it('enqueueMany returns the ids in input order, each running its own payload', async () => {
    const ids = await r.enqueueMany(Array.from({ length: 50 }, (_, i) => ({ name: 'echo', payload: { i }, options: { queue } })));
    expect(ids).toHaveLength(50);
    expect(new Set(ids).size).toBe(50);
    const done = await Promise.all(ids.map((id) => r.wait(id, { timeoutMs: 10_000 })));
    done.forEach((e, i) => {
      expect(e.status).toBe('completed');
      expect(e.payload).toEqual({ i });
      expect((e.result as { id: string; payload: unknown }).id).toBe(ids[i]);
      expect((e.result as { id: string; payload: unknown }).payload).toEqual({ i });
    });
  });
});

describe('execution states', () => {
  it('queued, then running while the handler runs, then completed', async () => {
    hold.set(1, deferred());
    holding.set(1, deferred());
    const id = await r.enqueue('held', { n: 1 }, { queue: 'io', priority: 3, maxAttempts: 2 });
    await holding.get(1)!.promise;
    const mid = (await r.get(id))!;
    expect(mid).toMatchObject({ status: 'running', attempts: 1, priority: 3, maxAttempts: 2, result: null, finishedAt: null });
    expect(mid.startedAt).toBeInstanceOf(Date);
    expect(await count(r, r.names.workQueue, 'execution_id = $1 AND claimed_by IS NOT NULL', [id])).toBe(1);
    hold.get(1)!.resolve();
    expect(await r.wait(id, { timeoutMs: 10_000 })).toMatchObject({ status: 'completed', result: 1 });
  });

  it('a queued execution as get() shows it before any worker takes it', async () => {
    const id = await r.enqueue('nobody', { x: 1 }, { queue: 'io', priority: -2 });
    const e = (await r.get(id))!;
    expect(e).toMatchObject({
      id,
      status: 'queued',
      attempts: 0,
      result: null,
      error: null,
      startedAt: null,
      finishedAt: null,
      priority: -2,
    });
    expect(e.runAt.getTime()).toBeLessThanOrEqual(Date.now() + 1_000);
    await r.cancel(id);
  });

  it('null, numbers and synchronous handlers are fine results', async () => {
    const a = await r.enqueue('returns-null', {}, { queue: 'io' });
    const b = await r.enqueue('sync', { a: 2, b: 3 }, { queue: 'io' });
    expect(await r.wait(a, { timeoutMs: 10_000 })).toMatchObject({ status: 'completed', result: null });
    expect(await r.wait(b, { timeoutMs: 10_000 })).toMatchObject({ status: 'completed', result: 5 });
  });

  it('the ids grow in enqueue order', async () => {
    const a = await r.enqueue('nobody', 1, { queue: 'io' });
    const b = await r.enqueue('nobody', 2, { queue: 'io' });
    expect(BigInt(b)).toBeGreaterThan(BigInt(a));
    await r.cancel(a);
    await r.cancel(b);
  });

  it('a module registered by path string runs like one registered by URL', async () => {
    const id = await r.enqueue('echo-by-path', { p: 1 }, { queue: 'cpu' });
    expect(await r.wait(id, { timeoutMs: 10_000 })).toMatchObject({ status: 'completed', result: { payload: { p: 1 }, onThread: true } });
  });

  it("cancel() of a running task aborts its handler's signal; the execution is cancelled and the worker goes on", async () => {
    holding.set(2, deferred());
    const id = await r.enqueue('until-aborted', { n: 2 }, { queue: 'io' });
    await holding.get(2)!.promise;
    expect(await r.cancel(id)).toBe(true);
    const e = await r.wait(id, { timeoutMs: 10_000 });
    expect(e).toMatchObject({ status: 'cancelled', error: { name: 'CancelledError' } });
    expect(e.finishedAt).toBeInstanceOf(Date);
    await until('the handler to see its signal abort', () => aborts.has(2));
    expect(aborts.get(2)).toMatchObject({ name: 'TaskAbortedError', reason: 'cancelled' });
    expect(await r.cancel(id)).toBe(false); // already final
    // The cancelled run's late outcome changes nothing, and the worker still serves.
    const next = await r.enqueue('sync', { a: 1, b: 1 }, { queue: 'io' });
    expect(await r.wait(next, { timeoutMs: 10_000 })).toMatchObject({ status: 'completed', result: 2 });
    expect((await r.get(id))!.status).toBe('cancelled');
  });
});
