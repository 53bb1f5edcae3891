/**
 * Bad input met by a running worker: handlers returning non-JSON results, throwing non-Errors,
 * and tasks nobody serves. Each becomes a clear stored outcome (or stays queued), and the
 * worker goes on serving.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Rhythm, Worker } from 'rhythm';
import { count, fixture, freshRhythm, type TestDatabase } from './helpers.js';

let db: TestDatabase;
let r: Rhythm;
let running: Promise<unknown>;

const cycle = (): object => {
  const a: Record<string, unknown> = { name: 'a' };
  a.self = a;
  return a;
};

beforeAll(async () => {
  ({ db, r } = await freshRhythm());
  await r.startInternalWorker({ tickMs: 25 });
  const main = new Worker(r, { queue: 'bad-results' });
  main.task('returns', async (payload: { kind: string }) => {
    switch (payload.kind) {
      case 'bigint':
        return { total: 10n };
      case 'function':
        return { callback: () => 1 };
      case 'cycle':
        return cycle();
      case 'nan':
        return { ratio: NaN };
      case 'symbol':
        return Symbol('s');
      case 'lone-surrogate':
        return { text: 'half \udc00 a pair' };
      default:
        return { fine: true };
    }
  });
  main.task('throws-string', async () => {
    throw 'plain string thrown';
  });
  main.task('throws-object', () => {
    throw { code: 42 };
  });
  main.task('sync-throw', (payload: { message: string }) => {
    throw new RangeError(payload.message);
  });
  const threaded = new Worker(r, { queue: 'bad-results-threads', threads: 1 });
  threaded.task('returns', fixture('bad-result.js'));
  running = Promise.all([main.start(), threaded.start()]);
});
afterAll(async () => {
  await r?.shutdown();
  await running;
  await db?.drop();
});

describe('a handler returning a value that is not JSON', () => {
  // Each message names the result, the offending key (if nested) and the problem.
  const cases: [string, RegExp[]][] = [
    ['bigint', [/handler result/, /total/, /BigInt/]],
    ['function', [/handler result/, /callback/, /function/]],
    ['cycle', [/handler result/, /cycle|circular/i]],
    ['nan', [/handler result/, /ratio/, /NaN/]],
    ['symbol', [/handler result/, /Symbol/]],
  ];

  it.each(cases)('main thread, %s: fails at once with a clear stored error', async (kind, mentions) => {
    const id = await r.enqueue('returns', { kind }, { queue: 'bad-results', maxAttempts: 3 });
    const e = await r.wait(id, { timeoutMs: 10_000 });
    expect(e.status).toBe('failed');
    expect(e.attempts).toBe(1); // running it again would return the same value: not retried
    expect(e.result).toBeNull();
    expect(e.error?.name).toBe('RhythmValidationError');
    for (const m of mentions) expect(e.error?.message).toMatch(m);
  });

  it.each([
    ['bigint', [/handler result/, /big/, /BigInt/]],
    ['function', [/handler result/, /fn/, /function/]],
    ['cycle', [/handler result/, /cycle|circular/i]],
    ['nan', [/handler result/, /value/, /NaN/]],
  ] as [string, RegExp[]][])('thread pool, %s: fails at once with a clear stored error', async (kind, mentions) => {
    const id = await r.enqueue('returns', { kind }, { queue: 'bad-results-threads', maxAttempts: 3 });
    const e = await r.wait(id, { timeoutMs: 10_000 });
    expect(e.status).toBe('failed');
    expect(e.attempts).toBe(1);
    expect(e.error?.name).toBe('RhythmValidationError');
    for (const m of mentions) expect(e.error?.message).toMatch(m);
  });

  it('a result jsonb cannot hold (a lone surrogate) fails with a clear stored error; results settled alongside it are kept', async () => {
    const ids = await r.enqueueMany(
      Array.from({ length: 30 }, (_, i) => ({
        name: 'returns',
        payload: { kind: i === 13 ? 'lone-surrogate' : 'fine' },
        options: { queue: 'bad-results', maxAttempts: 3 },
      })),
    );
    const done = await Promise.all(ids.map((id) => r.wait(id, { timeoutMs: 10_000 })));
    done.forEach((e, i) => {
      if (i === 13) {
        expect(e).toMatchObject({ status: 'failed', attempts: 1, result: null });
        // Refused before the write (naming the key), or by Postgres at the write.
        if (e.error?.name === 'ResultRejectedError') expect(e.error.message).toMatch(/database refused to store/);
        else expect(e.error).toMatchObject({ name: 'RhythmValidationError', message: expect.stringMatching(/handler result.*text/) });
      } else {
        expect(e).toMatchObject({ status: 'completed', result: { fine: true } });
      }
    });
  });

  it('the workers still serve good results afterwards, on both executors', async () => {
    const a = await r.enqueue('returns', { kind: 'fine' }, { queue: 'bad-results' });
    const b = await r.enqueue('returns', { kind: 'fine' }, { queue: 'bad-results-threads' });
    const [ea, eb] = await Promise.all([r.wait(a, { timeoutMs: 10_000 }), r.wait(b, { timeoutMs: 10_000 })]);
    expect(ea).toMatchObject({ status: 'completed', result: { fine: true }, error: null });
    expect(eb).toMatchObject({ status: 'completed', result: { fine: true }, error: null });
  });
});

describe('a handler throwing', () => {
  it('a string: stored as NonErrorThrown with the value in the message', async () => {
    const id = await r.enqueue('throws-string', null, { queue: 'bad-results', maxAttempts: 1 });
    const e = await r.wait(id, { timeoutMs: 10_000 });
    expect(e.status).toBe('failed');
    expect(e.error).toMatchObject({ name: 'NonErrorThrown', message: 'handler threw a non-Error value: plain string thrown' });
  });

  it('a plain object: stored as NonErrorThrown with the object as JSON', async () => {
    const id = await r.enqueue('throws-object', null, { queue: 'bad-results', maxAttempts: 1 });
    const e = await r.wait(id, { timeoutMs: 10_000 });
    expect(e.error).toMatchObject({ name: 'NonErrorThrown', message: 'handler threw a non-Error value: {"code":42}' });
  });

  it('synchronously from a non-async handler: stored with the error class name', async () => {
    const id = await r.enqueue('sync-throw', { message: 'out of range' }, { queue: 'bad-results', maxAttempts: 1 });
    const e = await r.wait(id, { timeoutMs: 10_000 });
    expect(e.status).toBe('failed');
    expect(e.error).toMatchObject({ name: 'RangeError', message: 'out of range' });
    expect(e.error?.stack).toContain('handler-errors.test.ts');
  });
});

describe('task names nobody serves', () => {
  it('stay queued and unclaimed while a worker serving other names of that queue runs', async () => {
    const orphan = await r.enqueue('nobody-serves-this', { n: 1 }, { queue: 'bad-results' });
    // Enqueued after the orphan, on the same queue: the worker's claims after this point have
    // passed over the orphan.
    const later = await r.enqueue('returns', { kind: 'fine' }, { queue: 'bad-results' });
    expect((await r.wait(later, { timeoutMs: 10_000 })).status).toBe('completed');
    const again = await r.enqueue('returns', { kind: 'fine' }, { queue: 'bad-results' });
    expect((await r.wait(again, { timeoutMs: 10_000 })).status).toBe('completed');

    const e = await r.get(orphan);
    expect(e).toMatchObject({ status: 'queued', attempts: 0, startedAt: null, error: null });
    expect(await count(r, r.names.workQueue, 'execution_id = $1 AND claimed_by IS NULL AND claimed_until IS NULL', [orphan])).toBe(1);
  });

  it('a served name on another queue is not taken by a worker of a different queue', async () => {
    // "returns" is served on bad-results and bad-results-threads, not on "elsewhere".
    const id = await r.enqueue('returns', { kind: 'fine' }, { queue: 'elsewhere' });
    const later = await r.enqueue('returns', { kind: 'fine' }, { queue: 'bad-results' });
    await r.wait(later, { timeoutMs: 10_000 });
    expect((await r.get(id))!.status).toBe('queued');
  });

  it('two workers of one queue with different names each take only their own', async () => {
    const seen: { worker: string; name: string }[] = [];
    const a = new Worker(r, { queue: 'split' });
    a.task('only-a', async (_p, ctx) => {
      seen.push({ worker: 'a', name: ctx.name });
      return 'a';
    });
    const b = new Worker(r, { queue: 'split' });
    b.task('only-b', async (_p, ctx) => {
      seen.push({ worker: 'b', name: ctx.name });
      return 'b';
    });
    const both = Promise.all([a.start(), b.start()]);
    try {
      const ids = await r.enqueueMany(
        Array.from({ length: 20 }, (_, i) => ({ name: i % 2 ? 'only-a' : 'only-b', payload: i, options: { queue: 'split' } })),
      );
      const done = await Promise.all(ids.map((id) => r.wait(id, { timeoutMs: 10_000 })));
      for (const e of done) expect(e.result).toBe(e.name === 'only-a' ? 'a' : 'b');
      expect(seen).toHaveLength(20);
      for (const s of seen) expect(s.name).toBe(s.worker === 'a' ? 'only-a' : 'only-b');
    } finally {
      await Promise.all([a.stop(), b.stop()]);
      await both;
    }
  });
});
