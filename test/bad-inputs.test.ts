/**
 * The table of bad inputs tried against the API: each must be refused with a clear
 * RhythmValidationError naming the problem (not a TypeError, a raw DatabaseError, a stack
 * overflow, or silence), before anything is written. Add every new bad input found here, so
 * the table only grows. Some inputs that used to be refused wrongly are in ACCEPTED below.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Rhythm, RhythmValidationError, Worker, defineTask } from 'rhythm';
import { count, freshRhythm, type TestDatabase } from './helpers.js';
// The check ctx.progress() runs in the handler (main thread or thread) before anything is sent.
import { encodeProgress } from '../src/contract/progress-value.js';

let db: TestDatabase;
let r: Rhythm;
let folder: string;

beforeAll(async () => {
  ({ db, r } = await freshRhythm());
  folder = mkdtempSync(path.join(tmpdir(), 'rhythm-bad-inputs-'));
});
afterAll(async () => {
  await r?.shutdown();
  await db?.drop();
  rmSync(folder, { recursive: true, force: true });
});

const nested = (depth: number): unknown => {
  let v: unknown = 0;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
};
const init = (options: unknown) => Rhythm.init(options as never);
const url = () => db.url;
const threaded = () => new Worker(r, { queue: 'bad-inputs', threads: 1 });
const item = { name: 'ok', payload: 1 };

/** [what, the call, what the error must say] */
const BAD: [string, () => unknown, RegExp][] = [
  // Rhythm.init
  ['Rhythm.init(null)', () => init(null), /Rhythm\.init options must be an object, got null/],
  ['Rhythm.init("postgres://...")', () => init(url()), /Rhythm\.init options must be an object/],
  ['numeric databaseUrl', () => init({ databaseUrl: 5432 }), /databaseUrl must be a postgres:\/\/ URL string, got 5432/],
  ['null databaseUrl', () => init({ databaseUrl: null }), /databaseUrl must be a postgres:\/\/ URL string, got null/],
  ['unparsable databaseUrl', () => init({ databaseUrl: 'base' }), /databaseUrl is not a valid URL/],
  ['empty databaseUrl', () => init({ databaseUrl: '' }), /databaseUrl must be a postgres:\/\/ URL string, got an empty string/],
  [
    'https: databaseUrl',
    () => init({ databaseUrl: 'https://db.example.com/x' }),
    /must be a postgres:\/\/ or postgresql:\/\/ URL, got one starting with "https:"/,
  ],
  ["autoMigrate: 'no'", () => init({ databaseUrl: url(), autoMigrate: 'no' }), /option autoMigrate must be true or false, got "no"/],
  ["handleSignals: 'yes'", () => init({ databaseUrl: url(), handleSignals: 'yes' }), /option handleSignals must be true or false/],
  ['retryBackoff typo', () => init({ databaseUrl: url(), retryBackoff: { base: 10 } }), /unknown retryBackoff option "base"/],
  [
    'retryBackoff baseMs > maxMs',
    () => init({ databaseUrl: url(), retryBackoff: { baseMs: 5000, maxMs: 1000 } }),
    /retryBackoff\.baseMs \(5000\) must not exceed retryBackoff\.maxMs \(1000\)/,
  ],
  ['retryBackoff as a number', () => init({ databaseUrl: url(), retryBackoff: 100 }), /retryBackoff options must be an object/],
  ['logger that is not a logger', () => init({ databaseUrl: url(), logger: {} }), /option logger must be a pino logger/],
  ['schema with capitals', () => init({ databaseUrl: url(), schema: 'Bad-Schema' }), /invalid schema name "Bad-Schema"/],
  ["poolSize: '10'", () => init({ databaseUrl: url(), poolSize: '10' }), /option poolSize must be an integer from 1 to 10000, got "10"/],
  // Worker
  [
    'resourceLimits typo',
    () => new Worker(r, { threads: 1, resourceLimits: { heapMb: 16 } as never }),
    /unknown resourceLimits option "heapMb"/,
  ],
  [
    'resourceLimits negative',
    () => new Worker(r, { threads: 1, resourceLimits: { maxOldGenerationSizeMb: -1 } }),
    /resourceLimits\.maxOldGenerationSizeMb must be a positive number of megabytes, got -1/,
  ],
  [
    'resourceLimits as a string',
    () => new Worker(r, { threads: 1, resourceLimits: 'big' as never }),
    /resourceLimits options must be an object/,
  ],
  ['workerId with NUL', () => new Worker(r, { workerId: 'w\u00001' }), /workerId "w\\u00001" contains a NUL character/],
  ['workerId empty', () => new Worker(r, { workerId: '' }), /workerId must be a non-empty string/],
  ['workerId number', () => new Worker(r, { workerId: 7 as never }), /workerId must be a non-empty string .* got 7/],
  ['workerId with a lone surrogate', () => new Worker(r, { workerId: 'w\ud800' }), /workerId .* lone UTF-16 surrogate/],
  ['a folder as a task module', () => threaded().task('t', folder), /is a folder, not a module file/],
  ['a folder as a file: URL', () => threaded().task('t', new URL(`file://${folder}/`)), /is a folder, not a module file/],
  ['an https: URL as a task module', () => threaded().task('t', 'https://example.com/task.js'), /must be a local file .* got a https: URL/],
  [
    'a data: URL as a task module',
    () => threaded().task('t', new URL('data:text/javascript,export default () => 1')),
    /must be a local file .* got a data: URL/,
  ],
  ['task name with NUL at registration', () => new Worker(r).task('a\u0000b', () => 1), /task name "a\\u0000b" contains a NUL character/],
  ['task name with a lone surrogate at registration', () => new Worker(r).task('a\udc00', () => 1), /lone UTF-16 surrogate/],
  // enqueue
  ['task name with NUL', () => r.enqueue('a\u0000b', {}), /task name "a\\u0000b" contains a NUL character/],
  ['task name with a lone surrogate', () => r.enqueue('half \ud800', {}), /task name .* contains a lone UTF-16 surrogate/],
  ['client: {}', () => r.enqueue('ok', 1, { client: {} as never }), /option client must be a pg client/],
  ['client: null', () => r.enqueue('ok', 1, { client: null as never }), /option client must be a pg client/],
  [
    'runAt before 4713 BC',
    () => r.enqueue('ok', 1, { runAt: new Date(-8.64e15) }),
    /runAt is .* before the earliest time Postgres can store/,
  ],
  ['runAt an invalid Date', () => r.enqueue('ok', 1, { runAt: new Date('nope') }), /runAt must be a valid Date/],
  ['payload nested 5,000 deep', () => r.enqueue('ok', nested(5_000)), /payload\[0\]\[0\].*\.\.\..* is nested deeper than 1000 levels/],
  ['payload nested 1,001 deep', () => r.enqueue('ok', nested(1_001)), /nested deeper than 1000 levels/],
  ['enqueue options null', () => r.enqueue('ok', 1, null as never), /enqueue options must be an object, got null/],
  // enqueueMany
  ['enqueueMany null options', () => r.enqueueMany([item], null as never), /enqueueMany options must be an object, got null/],
  ['enqueueMany string options', () => r.enqueueMany([item], 'x' as never), /enqueueMany options must be an object, got "x"/],
  // biome-ignore lint/suspicious/noSparseArray: the hole is the bad input under test.
  ['enqueueMany sparse array', () => r.enqueueMany([item, , item] as never), /enqueueMany item 1 is missing/],
  ['enqueueMany client: {}', () => r.enqueueMany([item], { client: {} as never }), /option client must be a pg client/],
  [
    'enqueueMany item options string',
    () => r.enqueueMany([{ ...item, options: 'x' as never }]),
    /enqueueMany item 0: options must be an object, got "x"/,
  ],
  ['enqueueMany item with NUL name', () => r.enqueueMany([item, { name: 'x\u0000', payload: 1 }]), /enqueueMany item 1: task name .* NUL/],
  // unique keys, per-execution backoff
  ['uniqueMode without uniqueKey', () => r.enqueue('ok', 1, { uniqueMode: 'keep' }), /uniqueMode "keep" needs a uniqueKey/],
  [
    'uniqueMode misspelled',
    () => r.enqueue('ok', 1, { uniqueKey: 'k', uniqueMode: 'replaces' as never }),
    /uniqueMode must be 'keep' or 'replace', got "replaces"/,
  ],
  ['uniqueKey empty', () => r.enqueue('ok', 1, { uniqueKey: '' }), /uniqueKey must be a non-empty string/],
  ['uniqueKey with NUL', () => r.enqueue('ok', 1, { uniqueKey: 'a\u0000' }), /uniqueKey "a\\u0000" contains a NUL character/],
  [
    'uniqueMode without uniqueKey in enqueueMany',
    () => r.enqueueMany([item, { ...item, options: { uniqueMode: 'replace' } }]),
    /enqueueMany item 1: option uniqueMode "replace" needs a uniqueKey/,
  ],
  [
    'uniqueMode misspelled in enqueueMany',
    () => r.enqueueMany([{ ...item, options: { uniqueKey: 'k', uniqueMode: 'merge' as never } }]),
    /enqueueMany item 0: option uniqueMode must be 'keep' or 'replace', got "merge"/,
  ],
  [
    'enqueueMany item with a definition and a bad option',
    () => r.enqueueMany([{ name: defineTask('typed', { queue: 'q' }), payload: 1, options: { priority: 1.5 } }]),
    /enqueueMany item 0: option priority must be an integer/,
  ],
  [
    'backoff baseMs > maxMs',
    () => r.enqueue('ok', 1, { backoff: { baseMs: 10, maxMs: 1 } }),
    /backoff\.baseMs \(10\) must not exceed backoff\.maxMs \(1\)/,
  ],
  ['backoff typo', () => r.enqueue('ok', 1, { backoff: { base: 1 } as never }), /unknown backoff option "base"/],
  // typed tasks
  ['defineTask unknown default', () => defineTask('t', { retries: 2 } as never), /unknown defineTask\("t"\) option "retries"/],
  ['defineTask bad queue', () => defineTask('t', { queue: '' }), /invalid queue name ""/],
  [
    'a definition on a worker of another queue',
    () => new Worker(r, { queue: 'a' }).task(defineTask('t', { queue: 'b' }), () => 1),
    /defined for queue "b", but this worker serves queue "a"/,
  ],
  // cron schedules
  ['cron with 4 fields', () => r.schedule('s', { cron: '* * * *', task: 't' }), /schedule "s": invalid cron expression "\* \* \* \*"/],
  ['cron minute 61', () => r.schedule('s', { cron: '61 * * * *', task: 't' }), /invalid cron expression "61 \* \* \* \*".*minute/],
  ['cron that never fires', () => r.schedule('s', { cron: '0 0 30 2 *', task: 't' }), /"0 0 30 2 \*" never fires/],
  ['unknown time zone', () => r.schedule('s', { cron: '0 3 * * *', timezone: 'Paris', task: 't' }), /unknown time zone "Paris"/],
  [
    'catchUp misspelled',
    () => r.schedule('s', { cron: '0 3 * * *', task: 't', catchUp: 'latest' as never }),
    /catchUp must be 'none', 'last' or 'all', got "latest"/,
  ],
  ['schedule without a task', () => r.schedule('s', { cron: '0 3 * * *' } as never), /schedule "s": task name must be a string/],
  ['schedule name empty', () => r.schedule('', { cron: '0 3 * * *', task: 't' }), /schedule name: must not be empty/],
  ['syncSchedules of an array', () => r.syncSchedules([] as never), /syncSchedules expects an object of schedules by name/],
  ['cron that is not a string', () => r.schedule('s', { cron: 5 as never, task: 't' }), /schedule "s": .*cron/],
  [
    'time zone that is not a string',
    () => r.schedule('s', { cron: '0 3 * * *', timezone: 2 as never, task: 't' }),
    /schedule "s": .*time ?zone/i,
  ],
  [
    'schedule group empty',
    () => r.schedule('s', { cron: '0 3 * * *', task: 't', group: '' }),
    /schedule "s": .*group must be a non-empty string/,
  ],
  [
    'syncSchedules with an invalid cron names it',
    () => r.syncSchedules({ ok: { cron: '0 3 * * *', task: 't' }, bad: { cron: '0 25 * * *', task: 't' } }),
    /schedule "bad": invalid cron expression "0 25 \* \* \*"/,
  ],
  // queue controls and progress
  [
    'groupConcurrency 0',
    () => new Worker(r, { groupConcurrency: 0 }),
    /option groupConcurrency must be an integer from 1 to 100000, got 0/,
  ],
  [
    'groupConcurrency 0.5',
    () => new Worker(r, { groupConcurrency: 0.5 }),
    /option groupConcurrency must be an integer from 1 to 100000, got 0\.5/,
  ],
  ['rate limit max 0', () => r.setRateLimit('q', { max: 0, intervalMs: 1000 }), /option rate limit max must be an integer >= 1, got 0/],
  ['rate limit intervalMs 0', () => r.setRateLimit('q', { max: 10, intervalMs: 0 }), /intervalMs must be an integer >= 1, got 0/],
  ['progress that is not JSON', () => encodeProgress({ at: 1n }), /progress\.at .*BigInt/],
  [
    'progress with a cycle',
    () => {
      const p: Record<string, unknown> = {};
      p.self = p;
      return encodeProgress(p);
    },
    /progress.*(cycle|circular)/i,
  ],
  // wait, shutdown, internal worker
  ['wait(id, null)', () => r.wait('1', null as never), /wait options must be an object, got null/],
  ['wait(id, "1000")', () => r.wait('1', '1000' as never), /wait options must be an object/],
  ['wait with a negative timeoutMs', () => r.wait('1', { timeoutMs: -1 }), /option timeoutMs must be an integer >= 0, got -1/],
  ['waitMany(null)', () => r.waitMany(null as never), /waitMany expects an array of execution ids, got null/],
  ['waitMany("1")', () => r.waitMany('1' as never), /waitMany expects an array of execution ids, got "1"/],
  // biome-ignore lint/suspicious/noSparseArray: the hole is the bad input under test.
  ['waitMany sparse array', () => r.waitMany(['1', , '2'] as never), /waitMany id 1 is missing/],
  ['waitMany with a numeric id', () => r.waitMany(['1', 2 as never]), /waitMany id 1: invalid execution id 2/],
  ['waitMany with id "0"', () => r.waitMany(['0']), /waitMany id 0: invalid execution id "0"/],
  ['waitMany id beyond bigint', () => r.waitMany(['9223372036854775808']), /waitMany id 0: invalid execution id/],
  ['waitMany(ids, null)', () => r.waitMany(['1'], null as never), /waitMany options must be an object, got null/],
  ['waitMany option typo', () => r.waitMany(['1'], { timeout: 5 } as never), /unknown waitMany option "timeout"/],
  ['waitMany timeoutMs as a string', () => r.waitMany(['1'], { timeoutMs: '5' as never }), /option timeoutMs must be an integer/],
  ['startInternalWorker(null)', () => r.startInternalWorker(null as never), /startInternalWorker options must be an object/],
  [
    'retentionMs beyond a hundred years',
    () => r.startInternalWorker({ retentionMs: 1e300 }),
    /option retentionMs must be an integer from 0 to/,
  ],
  [
    'failedRetentionMs negative',
    () => r.startInternalWorker({ failedRetentionMs: -1 }),
    /option failedRetentionMs must be an integer >= 0, got -1/,
  ],
  ['shutdown typo', () => r.shutdown({ timeout: 1000 } as never), /unknown shutdown option "timeout"/],
];

describe('bad input', () => {
  it.each(BAD)('%s', async (_what, call, message) => {
    let thrown: unknown;
    try {
      await call();
    } catch (err) {
      thrown = err;
    }
    expect(thrown, 'no error was thrown').toBeInstanceOf(RhythmValidationError);
    expect((thrown as Error).message).toMatch(message);
  });

  it('wrote nothing', async () => {
    expect(await count(r, r.names.executions)).toBe(0);
    expect(await count(r, r.names.schedules)).toBe(0);
  });
});

describe('inputs once refused or mangled, now accepted', () => {
  it('retention over 24.8 days (it only reaches SQL)', async () => {
    const { r: other, db: otherDb } = await freshRhythm();
    try {
      const iw = await other.startInternalWorker({ retentionMs: 30 * 86_400_000, tickMs: 50 });
      expect(await iw.tick()).toMatchObject({ pruned: 0 });
    } finally {
      await other.shutdown();
      await otherDb.drop();
    }
  });

  it('a payload nested 1,000 deep is stored and read back; the earliest runAt Postgres stores is accepted', async () => {
    const id = await r.enqueue('accepted', nested(1_000), { delayMs: 3_600_000 });
    const e = await r.get(id);
    expect(JSON.stringify(e!.payload)).toBe(JSON.stringify(nested(1_000)));
    const early = new Date(Date.UTC(-4713, 10, 24));
    const id2 = await r.enqueue('accepted', 1, { runAt: early });
    expect((await r.get(id2))!.runAt.getTime()).toBe(early.getTime());
    for (const x of [id, id2]) await r.cancel(x);
  });
});
