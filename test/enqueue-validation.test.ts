/**
 * Bad input at the API: each is refused with a clear RhythmValidationError before anything is
 * written to the database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rhythm, RhythmValidationError, Worker } from 'rhythm';
import { count, fixture, freshRhythm, type TestDatabase } from './helpers.js';

let db: TestDatabase;
let r: Rhythm;

beforeAll(async () => {
  ({ db, r } = await freshRhythm());
});
afterAll(async () => {
  await r?.shutdown();
  await db?.drop();
});

/** Nothing any refused call did may have reached the tables. */
async function expectNothingWritten(): Promise<void> {
  // 'accepted' is the name of the accepted (then cancelled) enqueues of this file.
  expect(await count(r, r.names.executions, "name <> 'accepted'")).toBe(0);
  expect(await count(r, r.names.workQueue)).toBe(0);
  expect(await count(r, r.names.scheduledQueue)).toBe(0);
}

describe('task names', () => {
  it('refuses an empty or blank task name at enqueue', async () => {
    await expect(r.enqueue('', {})).rejects.toThrow(RhythmValidationError);
    await expect(r.enqueue('', {})).rejects.toThrow(/task name must not be empty/);
    await expect(r.enqueue('   ', {})).rejects.toThrow(/task name must not be empty/);
    await expect(r.enqueue(undefined as unknown as string, {})).rejects.toThrow(/task name must be a string/);
    await expect(r.enqueue('x'.repeat(201), {})).rejects.toThrow(/longer than 200/);
    await expectNothingWritten();
  });

  it('refuses an empty task name at registration', () => {
    const w = new Worker(r, { queue: 'names' });
    expect(() => w.task('', async () => null)).toThrow(RhythmValidationError);
    expect(() => w.task('', async () => null)).toThrow(/task name must not be empty/);
  });

  it('refuses a task registered twice on one worker, as a function or a module', () => {
    const w = new Worker(r, { queue: 'names', threads: 1 });
    w.task('twice', async () => 1);
    expect(() => w.task('twice', async () => 2)).toThrow(RhythmValidationError);
    expect(() => w.task('twice', async () => 2)).toThrow(/"twice" is already registered/);
    expect(() => w.task('twice', fixture('echo.js'))).toThrow(/already registered/);
    w.task('mod', fixture('echo.js'));
    expect(() => w.task('mod', async () => 2)).toThrow(/"mod" is already registered/);
  });

  it('refuses a module task on a worker without threads, a missing module, and a non-handler', () => {
    const plain = new Worker(r, { queue: 'names' });
    expect(() => plain.task('mod', fixture('echo.js'))).toThrow(/runs on threads: give this Worker a "threads" option/);
    const threaded = new Worker(r, { queue: 'names', threads: 1 });
    expect(() => threaded.task('missing', fixture('does-not-exist.js'))).toThrow(/module not found at .*does-not-exist\.js/);
    expect(() => threaded.task('num', 42 as unknown as string)).toThrow(/handler must be a function, a module URL or a path/);
  });

  it('refuses to start a worker with no tasks', () => {
    const w = new Worker(r, { queue: 'names' });
    expect(() => w.start()).toThrow(/has no tasks registered/);
  });
});

describe('queue names', () => {
  it.each(['', 'has space', '-leading-dash', 'semi;colon', "quote'", 'q'.repeat(101), 'émoji'])(
    'refuses queue %j at enqueue and in a Worker',
    async (queue) => {
      await expect(r.enqueue('t', {}, { queue })).rejects.toThrow(RhythmValidationError);
      await expect(r.enqueue('t', {}, { queue })).rejects.toThrow(/invalid queue name/);
      expect(() => new Worker(r, { queue })).toThrow(/invalid queue name/);
    },
  );

  it('refuses a non-string queue', async () => {
    await expect(r.enqueue('t', {}, { queue: 7 as unknown as string })).rejects.toThrow(/invalid queue name 7/);
    await expectNothingWritten();
  });
});

describe('enqueue options', () => {
  const bad: [string, object, RegExp][] = [
    ['negative delayMs', { delayMs: -1 }, /option delayMs must be an integer (>= 0|from 0).*got -1/],
    ['fractional delayMs', { delayMs: 1.5 }, /option delayMs must be an integer/],
    ['string delayMs', { delayMs: '100' }, /option delayMs must be an integer/],
    ['maxAttempts 0', { maxAttempts: 0 }, /option maxAttempts must be an integer (>= 1|from 1).*got 0/],
    ['negative maxAttempts', { maxAttempts: -3 }, /option maxAttempts must be an integer (>= 1|from 1)/],
    ['fractional priority', { priority: 0.5 }, /option priority must be an integer/],
    ['priority beyond int32', { priority: 2 ** 31 }, /option priority must be an integer/],
    ['timeoutMs 0', { timeoutMs: 0 }, /option timeoutMs must be an integer (>= 1|from 1)/],
    ['runAt as a string', { runAt: '2030-01-01' }, /option runAt must be a valid Date/],
    ['runAt an invalid Date', { runAt: new Date('nonsense') }, /option runAt must be a valid Date/],
    ['delayMs and runAt together', { delayMs: 10, runAt: new Date(Date.now() + 1000) }, /delayMs and runAt cannot both be given/],
    ['an unknown option', { retries: 3 }, /unknown enqueue option "retries"/],
    ['a misspelled option', { delay: 100 }, /unknown enqueue option "delay"/],
    ['visibilityTimeoutMs below 1 s', { visibilityTimeoutMs: 10 }, /option visibilityTimeoutMs must be an integer (>= 1000|from 1000)/],
  ];

  it.each(bad)('refuses %s', async (_what, options, message) => {
    await expect(r.enqueue('t', {}, options as never)).rejects.toThrow(RhythmValidationError);
    await expect(r.enqueue('t', {}, options as never)).rejects.toThrow(message);
  });

  it('a delayMs beyond the supported range is refused with a message that states the maximum', async () => {
    const thirtyDays = 30 * 24 * 3600_000;
    const err = await r.enqueue('accepted', {}, { queue: 'too-far', delayMs: thirtyDays }).then(
      (id) => r.cancel(id).then(() => undefined),
      (e: unknown) => e,
    );
    // Either accepted (like runAt 30 days ahead) or refused with the limit named.
    if (err !== undefined) expect((err as Error).message).toMatch(/2147483647|at most|<=/);
  });

  it('refuses options that are not an object', async () => {
    await expect(r.enqueue('t', {}, null as never)).rejects.toThrow(/options must be an object, got null/);
    await expect(r.enqueue('t', {}, 5 as never)).rejects.toThrow(/options must be an object/);
  });

  it('wrote nothing for any refused option', async () => {
    await expectNothingWritten();
  });

  it('accepts the boundary values (delayMs 0, maxAttempts 1, negative priority)', async () => {
    const id = await r.enqueue('accepted', {}, { queue: 'boundary', delayMs: 0, maxAttempts: 1, priority: -5 });
    const e = await r.get(id);
    expect(e).toMatchObject({ status: 'queued', maxAttempts: 1, priority: -5, attempts: 0 });
    await r.cancel(id);
  });
});

describe('payloads that are not JSON', () => {
  const cycle: Record<string, unknown> = { a: 1 };
  cycle.self = cycle;
  // Each message names the payload, the offending key or index (if nested) and the problem.
  const bad: [string, unknown, RegExp[]][] = [
    ['a function', () => 1, [/payload/, /function/, /not JSON/]],
    ['a nested function', { a: { run() {} } }, [/payload/, /run/, /function/]],
    ['a BigInt', 10n, [/payload/, /BigInt/]],
    ['a nested BigInt', { amount: 10n }, [/payload/, /amount/, /BigInt/]],
    ['a cycle', cycle, [/payload/, /cycle|circular/i]],
    ['undefined at the top', undefined, [/payload is undefined/, /JSON/]],
    ['NaN', NaN, [/payload/, /NaN/, /not JSON/]],
    ['a nested NaN', { ratio: NaN }, [/payload/, /ratio/, /NaN/]],
    ['Infinity in an array', [1, Infinity], [/payload/, /1/, /Infinity/]],
    ['a Symbol', Symbol('s'), [/payload/, /Symbol/]],
    ['a NUL character', { text: 'a\u0000b' }, [/NUL character/]],
  ];

  it.each(bad)('refuses %s at enqueue', async (_what, payload, mentions) => {
    const err = await r.enqueue('t', payload).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RhythmValidationError);
    for (const m of mentions) expect((err as Error).message).toMatch(m);
  });

  it('refuses a bad item in enqueueMany naming its index, and writes none of the batch', async () => {
    const items = [
      { name: 'ok', payload: { n: 1 } },
      { name: 'ok', payload: { n: 2n } },
      { name: 'ok', payload: { n: 3 } },
    ];
    await expect(r.enqueueMany(items)).rejects.toThrow(/enqueueMany item 1: payload.*BigInt/);
    await expect(r.enqueueMany([{ name: '', payload: 1 }])).rejects.toThrow(/enqueueMany item 0: task name must not be empty/);
    await expect(r.enqueueMany([{ name: 'ok', payload: 1, options: { delayMs: -5 } }])).rejects.toThrow(/item 0: option delayMs/);
    await expect(r.enqueueMany([null as never])).rejects.toThrow(/item 0 must be/);
    await expect(r.enqueueMany('nope' as never)).rejects.toThrow(/expects an array/);
    await expectNothingWritten();
  });

  it('accepts the text backslash-u-0000 (which is not a NUL) and stores it unchanged', async () => {
    const payload = { text: '\\u0000', mixed: 'a\\\\u0000b' };
    const id = await r.enqueue('accepted', payload, { queue: 'json-only' });
    expect((await r.get(id))!.payload).toEqual(payload);
    await r.cancel(id);
  });

  it('refuses a string with a lone surrogate with a RhythmValidationError naming the key', async () => {
    const err = await r.enqueue('t', { title: 'ok', text: 'broken \ud800 half' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RhythmValidationError);
    expect((err as Error).message).toMatch(/payload/);
    expect((err as Error).message).toMatch(/text/);
    await expect(
      r.enqueueMany([
        { name: 'ok', payload: 1 },
        { name: 'ok', payload: ['\udc00'] },
      ]),
    ).rejects.toThrow(/item 1/);
  });

  it('accepts values with toJSON (a Date), stored as their JSON form', async () => {
    const when = new Date('2030-01-02T03:04:05.678Z');
    const id = await r.enqueue('accepted', { when }, { queue: 'json-only' });
    expect((await r.get(id))!.payload).toEqual({ when: '2030-01-02T03:04:05.678Z' });
    await r.cancel(id);
  });

  it('stores JSON payloads unchanged (null, strings, numbers, nested objects, unicode)', async () => {
    const payloads = [null, 'text', 0, -1.25, true, [], { nested: { list: [1, 'two', null], emoji: '🎵', quote: '"\\' } }];
    const ids = await r.enqueueMany(payloads.map((payload) => ({ name: 'accepted', payload, options: { queue: 'json-only' } })));
    expect(ids).toHaveLength(payloads.length);
    for (let i = 0; i < ids.length; i++) {
      expect((await r.get(ids[i]!))!.payload).toEqual(payloads[i]);
      await r.cancel(ids[i]!);
    }
  });
});

describe('other options and ids', () => {
  it('refuses bad Worker options', () => {
    expect(() => new Worker(r, { queue: 'x', concurrenc: 5 } as never)).toThrow(/unknown Worker option "concurrenc"/);
    expect(() => new Worker(r, { threads: 0 })).toThrow(/option threads must be an integer from 1/);
    expect(() => new Worker(r, { concurrency: 0 })).toThrow(/option concurrency must be an integer from 1/);
    expect(() => new Worker(r, { batchSize: -1 })).toThrow(/option batchSize/);
    expect(() => new Worker(r, { pollIntervalMs: 1 })).toThrow(/option pollIntervalMs must be an integer (>= 10|from 10)/);
    expect(() => new Worker(r, null as never)).toThrow(/Worker options must be an object/);
  });

  it('refuses bad Rhythm.init options without leaving a connection open', async () => {
    await expect(Rhythm.init({ databaseUrl: db.url, shema: 'x' } as never)).rejects.toThrow(/unknown Rhythm.init option "shema"/);
    await expect(Rhythm.init({ databaseUrl: db.url, schema: 'Bad-Schema' })).rejects.toThrow(/invalid schema name "Bad-Schema"/);
    await expect(Rhythm.init({ databaseUrl: db.url, schema: 'x; drop table y' })).rejects.toThrow(RhythmValidationError);
    await expect(Rhythm.init({ databaseUrl: db.url, poolSize: 0 })).rejects.toThrow(/option poolSize/);
    await expect(Rhythm.init({ databaseUrl: db.url, retryBackoff: { baseMs: -1 } })).rejects.toThrow(/retryBackoff.baseMs/);
  });

  it('refuses malformed execution ids in get, wait and cancel', async () => {
    for (const id of ['', 'abc', '0', '-1', '1.5', ' 1', '99999999999999999999']) {
      await expect(r.get(id)).rejects.toThrow(/invalid execution id/);
      await expect(r.wait(id)).rejects.toThrow(RhythmValidationError);
      await expect(r.cancel(id)).rejects.toThrow(/invalid execution id/);
    }
    await expect(r.get(42 as unknown as string)).rejects.toThrow(/invalid execution id 42/);
  });

  it('the largest bigint id is a valid id that does not exist', async () => {
    expect(await r.get('9223372036854775807')).toBeNull();
    expect(await r.cancel('9223372036854775807')).toBe(false);
  });

  it('refuses ids beyond the bigint range with a RhythmValidationError', async () => {
    for (const id of ['9223372036854775808', '9999999999999999999']) {
      await expect(r.get(id)).rejects.toThrow(RhythmValidationError);
      await expect(r.cancel(id)).rejects.toThrow(RhythmValidationError);
      await expect(r.wait(id, { timeoutMs: 1_000 })).rejects.toThrow(RhythmValidationError);
    }
  });

  it('refuses unknown wait and startInternalWorker options', async () => {
    await expect(r.wait('1', { timeout: 5 } as never)).rejects.toThrow(/unknown wait option "timeout"/);
    await expect(r.wait('1', { timeoutMs: -1 })).rejects.toThrow(/option timeoutMs/);
    await expect(r.startInternalWorker({ tick: 5 } as never)).rejects.toThrow(/unknown startInternalWorker option "tick"/);
    await expect(r.startInternalWorker({ tickMs: 0 })).rejects.toThrow(/option tickMs/);
  });

  it('refuses to start a worker twice, or to register a task on a started worker', async () => {
    const w = new Worker(r, { queue: 'started-twice' });
    w.task('t', async () => null);
    const running = w.start();
    try {
      expect(() => w.start()).toThrow(/already started/);
      expect(() => w.task('late', async () => null)).toThrow(/already started/);
    } finally {
      await w.stop();
      await running;
    }
  });

  it('returns null from get() for an id that does not exist', async () => {
    expect(await r.get('987654321')).toBeNull();
  });
});
