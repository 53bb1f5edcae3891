/**
 * The executions wait() and waitMany() resolve with decode their payload, result, times and
 * attempt log on first access (src/sql/finished-execution.ts). To the caller they must be
 * the plain objects get() returns: same keys in the same order, same values, same JSON, same
 * util.inspect output, equal under Node's strict deep equality (which compares prototypes).
 */
import assert from 'node:assert';
import { inspect } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rhythm, Worker, type Execution } from 'rhythm';
import { freshRhythm, type TestDatabase } from './helpers.js';

const Q = 'lazy';
let db: TestDatabase;
let r: Rhythm;
let rw: Rhythm;
let running: Promise<void>;

beforeAll(async () => {
  ({ db, r } = await freshRhythm());
  rw = await Rhythm.init({ databaseUrl: db.url, retryBackoff: { baseMs: 10, maxMs: 50 } });
  const w = new Worker(rw, { queue: Q });
  w.task('echo', async (payload: unknown, ctx) => {
    ctx.progress({ step: 1 });
    return { echo: payload, n: 12345678901234, nested: [1, 'two', { three: null }] };
  });
  w.task('fails', async () => {
    throw new RangeError('always');
  });
  w.task('nothing', async () => undefined);
  running = w.start();
});
afterAll(async () => {
  await r?.shutdown();
  await rw?.shutdown();
  await running;
  await db?.drop();
});

/** Every way a caller could look at an execution, each compared with get()'s. */
function expectSameAsGet(waited: Execution, got: Execution): void {
  expect(Object.getPrototypeOf(waited)).toBe(Object.prototype);
  expect(Object.keys(waited)).toEqual(Object.keys(got));
  expect(waited).toStrictEqual(got);
  assert.deepStrictEqual(waited, got);
  assert.deepStrictEqual({ ...waited }, got);
  assert.deepStrictEqual(structuredClone(waited), got);
  expect(JSON.stringify(waited)).toBe(JSON.stringify(got));
  expect(inspect(waited, { depth: 5 })).toBe(inspect(got, { depth: 5 }));
}

describe('executions from wait() and waitMany()', () => {
  it('equal what get() returns, for completed, failed and cancelled executions', async () => {
    const completed = await r.enqueue(
      'echo',
      { deep: { list: [1, 2.5, 'x', true, null] }, text: 'é ✓ "quoted"' },
      { queue: Q, group: 'g1', priority: 3 },
    );
    const failed = await r.enqueue('fails', null, { queue: Q, maxAttempts: 1 });
    const empty = await r.enqueue('nothing', 7, { queue: Q });
    const cancelled = await r.enqueue('echo', 'never', { queue: Q, delayMs: 3_600_000 });
    expect(await r.cancel(cancelled)).toBe(true);
    const ids = [completed, failed, empty, cancelled];
    const waited = await Promise.all(ids.map((id) => r.wait(id, { timeoutMs: 20_000 })));
    const many = await r.waitMany(ids, { timeoutMs: 20_000 });
    expect(waited.map((e) => e.status)).toEqual(['completed', 'failed', 'completed', 'cancelled']);
    for (const [i, id] of ids.entries()) {
      const got = (await r.get(id))!;
      expectSameAsGet(waited[i]!, got);
      expectSameAsGet(many[i]!, got);
    }
    // The fields that are decoded late hold what they should.
    const [c, f, n, x] = waited;
    expect(c!.payload).toEqual({ deep: { list: [1, 2.5, 'x', true, null] }, text: 'é ✓ "quoted"' });
    expect(c!.result).toEqual({ echo: c!.payload, n: 12345678901234, nested: [1, 'two', { three: null }] });
    expect(c!.createdAt).toBeInstanceOf(Date);
    expect(c!.finishedAt!.getTime()).toBeGreaterThanOrEqual(c!.startedAt!.getTime());
    expect(f!.error).toMatchObject({ name: 'RangeError', message: 'always' });
    for (const a of f!.attemptLog) expect(a.finishedAt).toBeInstanceOf(Date);
    expect(n!.result).toBeNull();
    expect(x!.startedAt).toBeNull();
    expect(x!.attemptLog).toEqual([]);
  });

  it('decode each field once, and take assignments, deletes and freezing as a plain object does', async () => {
    const id = await r.enqueue('echo', { a: 1 }, { queue: Q });
    const e = await r.wait(id, { timeoutMs: 20_000 });
    expect(e.result).toBe(e.result); // one decoded object, not a new one per access
    expect(e.createdAt).toBe(e.createdAt);
    expect(e.attemptLog).toBe(e.attemptLog);
    e.attemptLog.push({ attempt: 9, startedAt: null, finishedAt: new Date(0), workerId: null, outcome: 'failed', error: null });
    expect(e.attemptLog).toHaveLength(1);

    // Assigning a field that was never read replaces it; its raw form is not decoded later.
    e.payload = 'replaced';
    expect(e.payload).toBe('replaced');
    expect(JSON.parse(JSON.stringify(e)).payload).toBe('replaced');
    delete (e as Partial<Execution>).runAt;
    expect('runAt' in e).toBe(false);
    expect(Object.keys(e)).not.toContain('runAt');

    const frozen = Object.freeze(await r.wait(id, { timeoutMs: 20_000 }));
    expect(frozen.result).toEqual({ echo: { a: 1 }, n: 12345678901234, nested: [1, 'two', { three: null }] });
    expect(() => {
      (frozen as Execution).result = 'nope';
    }).toThrow(TypeError);
    expect(frozen.result).toEqual({ echo: { a: 1 }, n: 12345678901234, nested: [1, 'two', { three: null }] });
  });

  it('parse payloads and results with the jsonb parser pg has (a custom one too), and only when read', async () => {
    const id = await r.enqueue('echo', { big: 1 }, { queue: Q });
    await r.wait(id, { timeoutMs: 20_000 });
    const original = pg.types.getTypeParser(3802, 'text');
    const seen: string[] = [];
    pg.types.setTypeParser(3802, (text: string) => {
      seen.push(text);
      if (text.includes('"echo"')) throw new SyntaxError('this parser refuses results');
      return { parsed: JSON.parse(text) };
    });
    try {
      const e = await r.wait(id, { timeoutMs: 20_000 });
      expect(e.status).toBe('completed');
      expect(e.id).toBe(id);
      // Neither payload nor result parsed: nobody looked yet.
      const payloadOrResult = () => seen.filter((t) => t.includes('big'));
      expect(payloadOrResult()).toEqual([]);
      expect(e.payload).toEqual({ parsed: { big: 1 } }); // what get() gives with this parser
      expect(payloadOrResult()).toEqual(['{"big": 1}']);
      // A parser's error surfaces where the value is read, each time, and leaves the rest readable.
      expect(() => e.result).toThrow('this parser refuses results');
      expect(() => JSON.stringify(e)).toThrow('this parser refuses results');
      expect(e.finishedAt).toBeInstanceOf(Date);
      expect(e.payload).toEqual({ parsed: { big: 1 } });
      expect(payloadOrResult().filter((t) => t === '{"big": 1}')).toHaveLength(1);
    } finally {
      pg.types.setTypeParser(3802, original);
    }
  });
});
