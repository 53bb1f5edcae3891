/**
 * Claim-side controls in one process: pause/resume, rate limits and group concurrency, their
 * status output, the paths that give group slots back (settle, cancel, hand-back at shutdown,
 * the internal worker's recount), and their bad inputs. The guarantees across processes are
 * in queue-controls-processes.test.ts.
 *
 * "The worker looked and took nothing" is shown by the database, not by waiting (see
 * support/claims.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Rhythm, RhythmValidationError, Worker } from 'rhythm';
import { count, deferred, freshRhythm, until, type TestDatabase } from './helpers.js';
import { claimRanSince } from './support/claims.js';

let db: TestDatabase;
let r: Rhythm;

beforeAll(async () => {
  ({ db, r } = await freshRhythm());
});
afterAll(async () => {
  await r?.shutdown();
  await db?.drop();
});

const createdAt = async (id: string) => (await r.get(id))!.createdAt;

describe('bad input', () => {
  const BAD: [string, () => unknown, RegExp][] = [
    [
      'groupConcurrency 0',
      () => new Worker(r, { groupConcurrency: 0 }),
      /option groupConcurrency must be an integer from 1 to 100000, got 0/,
    ],
    ['groupConcurrency -1', () => new Worker(r, { groupConcurrency: -1 }), /option groupConcurrency must be .* got -1/],
    ['groupConcurrency 1.5', () => new Worker(r, { groupConcurrency: 1.5 }), /option groupConcurrency must be .* got 1\.5/],
    ["groupConcurrency '2'", () => new Worker(r, { groupConcurrency: '2' as never }), /option groupConcurrency must be .* got "2"/],
    ['group 42', () => r.enqueue('t', 1, { group: 42 as never }), /option group must be a non-empty string .* got 42/],
    ['group null', () => r.enqueue('t', 1, { group: null as never }), /option group must be a non-empty string .* got null/],
    ["group ''", () => r.enqueue('t', 1, { group: '' }), /option group must be a non-empty string .* got ""/],
    [
      'group too long',
      () => r.enqueue('t', 1, { group: 'g'.repeat(201) }),
      /option group must be a non-empty string of at most 200 characters/,
    ],
    ['group with NUL', () => r.enqueue('t', 1, { group: 'a\u0000' }), /option group "a\\u0000" contains a NUL character/],
    [
      'group in enqueueMany',
      () =>
        r.enqueueMany([
          { name: 't', payload: 1 },
          { name: 't', payload: 1, options: { group: {} as never } },
        ]),
      /enqueueMany item 1: option group must be/,
    ],
    ['rate limit max 0', () => r.setRateLimit('q', { max: 0, intervalMs: 1000 }), /option rate limit max must be an integer >= 1, got 0/],
    [
      'rate limit intervalMs 0',
      () => r.setRateLimit('q', { max: 5, intervalMs: 0 }),
      /option rate limit intervalMs must be an integer >= 1, got 0/,
    ],
    ['rate limit intervalMs -1000', () => r.setRateLimit('q', { max: 5, intervalMs: -1000 }), /rate limit intervalMs must be .* got -1000/],
    ['rate limit max 2.5', () => r.setRateLimit('q', { max: 2.5, intervalMs: 1000 }), /rate limit max must be .* got 2\.5/],
    ['rate limit without max', () => r.setRateLimit('q', { intervalMs: 1000 } as never), /rate limit max is missing/],
    ['rate limit without intervalMs', () => r.setRateLimit('q', { max: 5 } as never), /rate limit intervalMs is missing/],
    ['rate limit typo', () => r.setRateLimit('q', { max: 5, interval: 1000 } as never), /unknown rate limit option "interval"/],
    [
      'rate limit undefined',
      () => r.setRateLimit('q', undefined as never),
      /setRateLimit needs a limit \{ max, intervalMs \}, or null to remove it/,
    ],
    ['rate limit a number', () => r.setRateLimit('q', 100 as never), /rate limit options must be an object, got 100/],
    ['rate limit on a bad queue name', () => r.setRateLimit('no spaces', { max: 1, intervalMs: 1 }), /invalid queue name "no spaces"/],
    ['pause a bad queue name', () => r.pause('' as never), /invalid queue name ""/],
    ['resume a non-string', () => r.resume(7 as never), /invalid queue name 7/],
  ];
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
    expect(await count(r, r.names.queueControls)).toBe(0);
  });
});

describe('pause and resume', () => {
  it('a queue that does not exist yet can be paused; pausing twice keeps the first time; resume says whether it was paused', async () => {
    const at = await r.pause('not-yet');
    expect(at).toBeInstanceOf(Date);
    expect(await r.pause('not-yet')).toEqual(at);
    expect((await r.queueControls()).queues).toEqual([
      { queue: 'not-yet', paused: true, pausedAt: at, rateLimit: null, availableStarts: null },
    ]);
    expect(await r.resume('not-yet')).toBe(true);
    expect(await r.resume('not-yet')).toBe(false);
    expect(await r.resume('never-paused')).toBe(false);
    // Nothing left: the claim of an ordinary queue reads no control row.
    expect(await count(r, r.names.queueControls)).toBe(0);
  });

  it('a paused queue starts nothing (the worker claims and takes nothing); resume wakes the worker at once', async () => {
    const ran: string[] = [];
    await r.pause('paused-inproc');
    // A poll far beyond the test's length: only the NOTIFY of resume can start the task.
    const w = new Worker(r, { queue: 'paused-inproc', pollIntervalMs: 600_000 }).task('t', (_p, ctx) => {
      ran.push(ctx.id);
    });
    const running = w.start();
    try {
      const id = await r.enqueue('t', {}, { queue: 'paused-inproc' });
      await claimRanSince(r, await createdAt(id), 'rhythm-lease');
      expect((await r.get(id))!.status).toBe('queued');
      expect(ran).toEqual([]);
      expect(await r.resume('paused-inproc')).toBe(true);
      expect((await r.wait(id, { timeoutMs: 10_000 })).status).toBe('completed');
      expect(ran).toEqual([id]);
    } finally {
      await w.stop();
      await running;
    }
  });
});

describe('rate limits', () => {
  it('status shows the limit and the starts available; a new limit keeps the tokens left up to its maximum; null removes it', async () => {
    await r.setRateLimit('metered-status', { max: 10, intervalMs: 60_000 });
    let q = (await r.queueControls()).queues.find((x) => x.queue === 'metered-status')!;
    expect(q).toMatchObject({ paused: false, rateLimit: { max: 10, intervalMs: 60_000 }, availableStarts: 10 });
    await r.setRateLimit('metered-status', { max: 4, intervalMs: 60_000 });
    q = (await r.queueControls()).queues.find((x) => x.queue === 'metered-status')!;
    expect(q).toMatchObject({ rateLimit: { max: 4, intervalMs: 60_000 }, availableStarts: 4 });
    // Paused and rate-limited: removing one leaves the other.
    await r.pause('metered-status');
    await r.setRateLimit('metered-status', null);
    expect((await r.queueControls()).queues.find((x) => x.queue === 'metered-status')).toMatchObject({ paused: true, rateLimit: null });
    await r.resume('metered-status');
    expect((await r.queueControls()).queues.find((x) => x.queue === 'metered-status')).toBeUndefined();
    await r.setRateLimit('metered-status', null); // removing no limit is fine
  });

  it('one start per 300 ms: the tasks start that far apart, woken by the refill timer (the poll is ten minutes)', async () => {
    await r.setRateLimit('metered', { max: 1, intervalMs: 300 });
    const w = new Worker(r, { queue: 'metered', pollIntervalMs: 600_000 }).task('t', () => 1);
    const running = w.start();
    try {
      const ids = await r.enqueueMany(Array.from({ length: 4 }, (_, i) => ({ name: 't', payload: i, options: { queue: 'metered' } })));
      const done = await Promise.all(ids.map((id) => r.wait(id, { timeoutMs: 20_000 })));
      const starts = done.map((e) => e.startedAt!.getTime()).sort((a, b) => a - b);
      for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBeGreaterThanOrEqual(290);
      // The bucket was spent: whole tokens never go below zero.
      const q = (await r.queueControls()).queues.find((x) => x.queue === 'metered')!;
      expect(q.availableStarts).toBeGreaterThanOrEqual(0);
    } finally {
      await w.stop();
      await running;
      await r.setRateLimit('metered', null);
    }
  });

  it('an empty bucket starts nothing until it refills; raising the limit wakes the worker', async () => {
    await r.setRateLimit('metered-raise', { max: 1, intervalMs: 3_600_000 });
    const w = new Worker(r, { queue: 'metered-raise', pollIntervalMs: 600_000 }).task('t', () => 1);
    const running = w.start();
    try {
      const first = await r.enqueue('t', 1, { queue: 'metered-raise' });
      expect((await r.wait(first, { timeoutMs: 10_000 })).status).toBe('completed');
      const second = await r.enqueue('t', 2, { queue: 'metered-raise' });
      await claimRanSince(r, await createdAt(second), 'rhythm-lease');
      expect((await r.get(second))!.status).toBe('queued');
      await r.setRateLimit('metered-raise', { max: 1, intervalMs: 10 });
      expect((await r.wait(second, { timeoutMs: 10_000 })).status).toBe('completed');
    } finally {
      await w.stop();
      await running;
      await r.setRateLimit('metered-raise', null);
    }
  });
});

describe('group concurrency', () => {
  const slots = async (queue: string, group: string) =>
    (await r.pool.query(`SELECT running FROM ${r.names.workGroups} WHERE queue = $1 AND group_key = $2`, [queue, group])).rows[0]
      ?.running ?? 0;

  it('at most n of a group at once in one worker; tasks without a group are not limited; the group is recorded', async () => {
    let running = new Map<string, number>();
    let most = new Map<string, number>();
    let ungroupedAtOnce = 0;
    let ungrouped = 0;
    const gate = deferred();
    const w = new Worker(r, { queue: 'tenants', groupConcurrency: 2, concurrency: 50 }).task('t', async (p: { g: string | null }) => {
      if (p.g === null) {
        ungrouped++;
        ungroupedAtOnce = Math.max(ungroupedAtOnce, ungrouped);
        if (ungrouped === 5) gate.resolve();
        await gate.promise;
        ungrouped--;
        return;
      }
      running.set(p.g, (running.get(p.g) ?? 0) + 1);
      most.set(p.g, Math.max(most.get(p.g) ?? 0, running.get(p.g)!));
      await new Promise((res) => setTimeout(res, 5));
      running.set(p.g, running.get(p.g)! - 1);
    });
    const started = w.start();
    try {
      const items = Array.from({ length: 60 }, (_, i) => ({
        name: 't',
        payload: { g: `g${i % 3}` },
        options: { queue: 'tenants', group: `g${i % 3}` },
      }));
      const loose = Array.from({ length: 5 }, () => ({ name: 't', payload: { g: null }, options: { queue: 'tenants' } }));
      const ids = await r.enqueueMany([...items, ...loose]);
      await Promise.all(ids.map((id) => r.wait(id, { timeoutMs: 20_000 })));
      expect([...most.values()]).toEqual([2, 2, 2]);
      expect(ungroupedAtOnce).toBe(5);
      expect((await r.get(ids[0]!))!.group).toBe('g0');
      expect((await r.get(ids[60]!))!.group).toBeNull();
      for (const g of ['g0', 'g1', 'g2']) expect(await slots('tenants', g)).toBe(0);
    } finally {
      await w.stop();
      await started;
    }
    running = new Map();
    most = new Map();
  });

  it('a group at its limit waits (status lists it); cancelling the running one gives its slot back and the next starts', async () => {
    const hold = deferred();
    const started: string[] = [];
    const w = new Worker(r, { queue: 'one-at-a-time', groupConcurrency: 1, pollIntervalMs: 600_000 }).task('t', async (_p, ctx) => {
      started.push(ctx.id);
      await Promise.race([hold.promise, new Promise((res) => ctx.signal.addEventListener('abort', res))]);
    });
    const running = w.start();
    try {
      const first = await r.enqueue('t', 1, { queue: 'one-at-a-time', group: 'acme' });
      await until('the first task to start', () => started.length === 1);
      const second = await r.enqueue('t', 2, { queue: 'one-at-a-time', group: 'acme' });
      await claimRanSince(r, await createdAt(second), 'rhythm-lease');
      expect(started).toEqual([first]);
      expect((await r.queueControls()).groupsAtLimit).toEqual([{ queue: 'one-at-a-time', group: 'acme', running: 1, limit: 1 }]);
      expect(await r.cancel(first)).toBe(true);
      await until('the second task to start', () => started.length === 2);
      expect(started).toEqual([first, second]);
      hold.resolve();
      expect((await r.wait(second, { timeoutMs: 10_000 })).status).toBe('completed');
      expect(await slots('one-at-a-time', 'acme')).toBe(0);
    } finally {
      hold.resolve();
      await w.stop();
      await running;
    }
  });

  it('a task handed back at shutdown gives its slot back', async () => {
    const began = deferred();
    const w = new Worker(r, { queue: 'handed-back', groupConcurrency: 3 }).task('t', async (_p, ctx) => {
      began.resolve();
      await new Promise((res) => ctx.signal.addEventListener('abort', res));
      throw ctx.signal.reason;
    });
    const running = w.start();
    const id = await r.enqueue('t', 1, { queue: 'handed-back', group: 'acme' });
    await began.promise;
    expect(await slots('handed-back', 'acme')).toBe(1);
    await w.stop({ timeoutMs: 0 });
    await running;
    expect((await r.get(id))!.status).toBe('queued');
    expect(await slots('handed-back', 'acme')).toBe(0);
    expect(await count(r, r.names.workQueue, 'execution_id = $1 AND NOT holds_group_slot', [id])).toBe(1);
    await r.cancel(id);
  });

  it('the internal worker recounts slots that were not given back, and removes idle groups', async () => {
    // A count left behind (say, by a row deleted by hand): the group looks full.
    await r.pool.query(
      `INSERT INTO ${r.names.workGroups} (queue, group_key, running, concurrency) VALUES ('leaky', 'acme', 2, 2), ('leaky', 'idle', 0, 2)`,
    );
    const w = new Worker(r, { queue: 'leaky', groupConcurrency: 2, pollIntervalMs: 100 }).task('t', () => 1);
    const running = w.start();
    try {
      const id = await r.enqueue('t', 1, { queue: 'leaky', group: 'acme' });
      await claimRanSince(r, await createdAt(id), 'rhythm-lease');
      expect((await r.get(id))!.status).toBe('queued');
      // Its first pass runs at start, the next in an hour: ticked by hand meanwhile.
      const iw = await r.startInternalWorker({ tickMs: 3_600_000 });
      await iw.tick();
      expect((await r.wait(id, { timeoutMs: 10_000 })).status).toBe('completed');
      await iw.tick();
      expect(await count(r, r.names.workGroups, `queue = 'leaky'`)).toBe(0);
      // A delayed task keeps its group when it is promoted to the ready queue.
      const soon = await r.enqueue('t', 3, { queue: 'leaky', group: 'acme', delayMs: 1 });
      expect((await r.get(soon))!.status).toBe('scheduled');
      await until(
        'the delayed task to be due',
        async () => (await r.pool.query('SELECT now() > $1::timestamptz AS due', [(await r.get(soon))!.runAt])).rows[0].due,
      );
      await iw.tick();
      expect((await r.wait(soon, { timeoutMs: 10_000 })).group).toBe('acme');
    } finally {
      await w.stop();
      await running;
    }
  });

  it('a worker without groupConcurrency ignores groups and takes no slots', async () => {
    const w = new Worker(r, { queue: 'no-limit' }).task('t', () => 1);
    const running = w.start();
    try {
      const ids = await r.enqueueMany(
        Array.from({ length: 10 }, () => ({ name: 't', payload: 1, options: { queue: 'no-limit', group: 'acme' } })),
      );
      await Promise.all(ids.map((id) => r.wait(id, { timeoutMs: 10_000 })));
      expect(await count(r, r.names.workGroups, `queue = 'no-limit'`)).toBe(0);
    } finally {
      await w.stop();
      await running;
    }
  });
});
