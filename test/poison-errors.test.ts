/**
 * Whatever a handler throws is recorded as far as it can be, counts as an attempt, and
 * neither crashes the process (an async handler's rejection) nor loops (a synchronous throw
 * whose record failed used to hand the lease back uncounted, so the task ran again at once,
 * forever): on the main thread and on threads, thrown synchronously or rejected.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Rhythm, Worker } from 'rhythm';
import { fixture, freshRhythm, type TestDatabase } from './helpers.js';
import { poison } from './fixtures/poison.js';

const KINDS: [kind: string, expected: { name: RegExp | string; message: RegExp }][] = [
  ['bigint-message', { name: 'Error', message: /n: 1n/ }],
  ['name-getter-throws', { name: /could not be read|Error/, message: /the message is fine/ }],
  ['hostile-proxy', { name: /NonErrorThrown|UnreadableError/, message: /could not be read|Proxy|trap/ }],
  ['null-prototype', { name: 'NonErrorThrown', message: /code/ }],
  ['symbol', { name: 'NonErrorThrown', message: /Symbol\(thrown\)/ }],
  ['bigint', { name: 'NonErrorThrown', message: /10n/ }],
  ['to-string-throws', { name: 'NonErrorThrown', message: /handler threw/ }],
  ['bad-characters', { name: 'Error', message: /NUL .* and a lone .* surrogate/ }],
  ['undefined', { name: 'NonErrorThrown', message: /undefined/ }],
  ['stack-getter-throws', { name: 'Error', message: /stack/ }],
];
const MODES = ['main-sync', 'main-async', 'thread-sync', 'thread-async'] as const;

let db: TestDatabase;
let r: Rhythm;
let running: Promise<unknown>;
const runs = new Map<string, number>();
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  ({ db, r } = await freshRhythm());
  await r.startInternalWorker({ tickMs: 25 });
  const main = new Worker(r, { queue: 'poison-main' });
  main.task('poison', (p: { kind: string; async: boolean; key: string }) => {
    runs.set(p.key, (runs.get(p.key) ?? 0) + 1);
    const value = poison(p.kind);
    if (p.async) return Promise.reject(value);
    throw value;
  });
  const threads = new Worker(r, { queue: 'poison-threads', threads: 1 });
  threads.task('poison', fixture('poison.js'));
  running = Promise.all([main.start(), threads.start()]);
});
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await r?.shutdown();
  await running;
  await db?.drop();
});

it('every poison value fails its one attempt with a stored error, on the main thread and on threads', { timeout: 30_000 }, async () => {
  const items = MODES.flatMap((mode) =>
    KINDS.map(([kind]) => ({
      name: 'poison',
      payload: { kind, async: mode.endsWith('async'), key: `${mode}:${kind}` },
      options: { queue: mode.startsWith('main') ? 'poison-main' : 'poison-threads', maxAttempts: 1 },
    })),
  );
  const ids = await r.enqueueMany(items);
  const done = await Promise.all(ids.map((id) => r.wait(id, { timeoutMs: 20_000 })));
  done.forEach((e, i) => {
    const { key, kind } = items[i]!.payload;
    const expected = KINDS.find(([k]) => k === kind)![1];
    expect(e.status, key).toBe('failed');
    expect(e.attempts, key).toBe(1);
    expect(e.error!.name, key).toMatch(expected.name);
    expect(e.error!.message, key).toMatch(expected.message);
  });
  // The main-thread handler ran each task exactly once (no uncounted re-runs).
  for (const item of items.filter((it) => it.options.queue === 'poison-main')) expect(runs.get(item.payload.key), item.payload.key).toBe(1);
  expect(unhandled).toEqual([]);
});

it('a poison value with attempts left is retried like any failure, and counted each time', async () => {
  const id = await r.enqueue(
    'poison',
    { kind: 'name-getter-throws', async: false, key: 'retry' },
    { queue: 'poison-main', maxAttempts: 3 },
  );
  const e = await r.wait(id, { timeoutMs: 20_000 });
  expect(e).toMatchObject({ status: 'failed', attempts: 3 });
  expect(runs.get('retry')).toBe(3);
});
