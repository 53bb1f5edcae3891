/**
 * Claim-side controls across worker processes, each held by the database rather than by any
 * one process: group concurrency 2 with four processes never runs a third of one group at
 * once; a rate limit of 50/s holds over 3 s with two processes; a pause stops claims within a
 * second and holds across a worker restart until resume restarts them.
 *
 * Handlers record their own start and end times (database clock) in public.control_spans;
 * the checks are made on those and on the executions' recorded start times.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rhythm } from 'rhythm';
import { createMigratedTestDatabase, type TestDatabaseHandle } from './support/db.js';
import { claimRanSince } from './support/claims.js';
import { pollUntil, spawnWorker } from './fixtures/fault/harness.js';

type Spawned = ReturnType<typeof spawnWorker>;

let db: TestDatabaseHandle;
let r: Rhythm;
const spawned: Spawned[] = [];

beforeAll(async () => {
  db = await createMigratedTestDatabase('rhythm_controls');
  r = await Rhythm.init({ databaseUrl: db.url });
  await r.pool.query(`CREATE TABLE public.control_spans (
    execution_id bigint NOT NULL, grp text, pid int NOT NULL,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(), ended_at timestamptz)`);
});
afterAll(async () => {
  await Promise.all(spawned.map((w) => w.kill('SIGKILL')));
  await r?.shutdown();
  await db?.drop();
});

/** A worker process running `span` tasks, its connections named `name` (seen in pg_stat_activity). */
function worker(name: string, options: Record<string, unknown>, extra: Record<string, unknown> = {}): Spawned {
  const w = spawnWorker({
    databaseUrl: `${db.url}?application_name=${name}`,
    name,
    tasks: ['span'],
    worker: { workerId: name, ...options },
    ...extra,
  });
  spawned.push(w);
  return w;
}

const ready = (ws: Spawned[]) => Promise.all(ws.map((w) => w.waitFor((m: { evt: string }) => m.evt === 'ready', 'ready')));

/** Most spans of one group open at once (an end at the same instant as a start closes first). */
function mostAtOnce(spans: { started_at: Date; ended_at: Date }[]): number {
  const events = spans.flatMap((s) => [
    { t: s.started_at.getTime(), d: 1 },
    { t: s.ended_at.getTime(), d: -1 },
  ]);
  events.sort((a, b) => a.t - b.t || a.d - b.d);
  let open = 0;
  let most = 0;
  for (const e of events) {
    open += e.d;
    most = Math.max(most, open);
  }
  return most;
}

describe('group concurrency across processes', () => {
  it('groupConcurrency 2 with 4 worker processes never runs a third of one group at once', async () => {
    const options = { queue: 'tenants', groupConcurrency: 2, concurrency: 8 };
    const ws = [0, 1, 2, 3].map((i) => worker(`tenant-worker-${i}`, options, i === 0 ? { internalWorker: { tickMs: 200 } } : {}));
    await ready(ws);
    const groups = ['acme', 'globex', 'initech', 'umbrella', 'hooli'];
    const ids = await r.enqueueMany(
      Array.from({ length: 150 }, (_, i) => {
        const group = groups[i % groups.length]!;
        return { name: 'span', payload: { group, ms: 10 + (i % 4) * 5 }, options: { queue: 'tenants', group } };
      }),
    );
    const done = await Promise.all(ids.map((id) => r.wait(id, { timeoutMs: 60_000 })));
    expect(done.every((e) => e.status === 'completed')).toBe(true);

    const { rows } = await r.pool.query<{ grp: string; pid: number; started_at: Date; ended_at: Date }>(
      `SELECT grp, pid, started_at, ended_at FROM public.control_spans WHERE grp = ANY($1::text[])`,
      [groups],
    );
    expect(rows).toHaveLength(150);
    const most = Object.fromEntries(groups.map((g) => [g, mostAtOnce(rows.filter((s) => s.grp === g))]));
    for (const g of groups) expect(most[g], `group ${g}`).toBeLessThanOrEqual(2);
    // The limit was reached, not merely never approached, and by more than one process.
    expect(Math.max(...Object.values(most))).toBe(2);
    expect(new Set(rows.map((s) => s.pid)).size).toBeGreaterThan(1);
    // Every slot was given back.
    const slots = await r.pool.query(`SELECT coalesce(sum(running), 0)::int AS n FROM ${r.names.workGroups}`);
    expect(slots.rows[0].n).toBe(0);
    await Promise.all(ws.map((w) => w.kill('SIGTERM')));
  });
});

describe('rate limit across processes', () => {
  it('50 starts per second hold over 3 s with two worker processes (a burst of 50, then 50/s)', async () => {
    const MAX = 50;
    const TASKS = 200; // 50 at once, then 150 at 50/s: about 3 s
    await r.setRateLimit('metered', { max: MAX, intervalMs: 1_000 });
    // The poll is a minute: only the refill timers (and NOTIFY) can keep the starts coming.
    const ws = [0, 1].map((i) => worker(`metered-worker-${i}`, { queue: 'metered', concurrency: 100, pollIntervalMs: 60_000 }));
    await ready(ws);
    const ids = await r.enqueueMany(
      Array.from({ length: TASKS }, () => ({ name: 'span', payload: { group: 'metered' }, options: { queue: 'metered' } })),
    );
    const done = await Promise.all(ids.map((id) => r.wait(id, { timeoutMs: 60_000 })));
    expect(done.every((e) => e.status === 'completed')).toBe(true);

    // Start times as the claim recorded them (the database clock the bucket is refilled by).
    const starts = done.map((e) => e.startedAt!.getTime()).sort((a, b) => a - b);
    const spanMs = starts[starts.length - 1]! - starts[0]!;
    // Any window of T seconds holds at most the burst plus T seconds of refill (and a start or
    // two of slack: a claim records the start of its transaction, which may have waited a few
    // milliseconds for the bucket's lock behind one that refilled it).
    let worst = { at: 0, windowMs: 0, count: 0, allowed: Infinity };
    for (const windowMs of [250, 1_000, 2_000, 3_000]) {
      const allowed = MAX + (MAX * windowMs) / 1_000 + 2;
      let j = 0;
      for (let i = 0; i < starts.length; i++) {
        while (j < starts.length && starts[j]! < starts[i]! + windowMs) j++;
        const n = j - i;
        if (n - allowed > worst.count - worst.allowed) worst = { at: starts[i]! - starts[0]!, windowMs, count: n, allowed };
      }
    }
    expect(worst.count, `${worst.count} starts in ${worst.windowMs} ms from +${worst.at} ms`).toBeLessThanOrEqual(worst.allowed);
    // 150 starts beyond the burst need 3 s of refill: the limit was what paced them.
    expect(spanMs).toBeGreaterThanOrEqual(((TASKS - MAX) / MAX) * 1_000 - 100);
    const pids = await r.pool.query(`SELECT count(DISTINCT pid)::int AS n FROM public.control_spans WHERE grp = 'metered'`);
    expect(pids.rows[0].n).toBe(2);
    await r.setRateLimit('metered', null);
    await Promise.all(ws.map((w) => w.kill('SIGTERM')));
  });
});

describe('pause across processes', () => {
  it('pause stops claims within a second; it holds across a worker restart; resume restarts them', async () => {
    const options = { queue: 'pausable', concurrency: 4, pollIntervalMs: 60_000 };
    const first = worker('pausable-a', options, { handleSignals: true });
    await ready([first]);
    const ids = await r.enqueueMany(
      Array.from({ length: 400 }, () => ({ name: 'span', payload: { group: 'pausable', ms: 10 }, options: { queue: 'pausable' } })),
    );
    await r.wait(ids[20]!, { timeoutMs: 30_000 }); // running steadily

    const pausedAt = await r.pause('pausable');
    // In flight when the pause came: those finish; nothing else starts.
    await pollUntil(
      async () =>
        (await r.pool.query(`SELECT count(*)::int AS n FROM ${r.names.workQueue} WHERE queue = 'pausable' AND claimed_until IS NOT NULL`))
          .rows[0].n === 0,
      'the tasks in flight at the pause to finish',
    );
    const lastStart = async () =>
      (await r.pool.query<{ t: Date | null }>(`SELECT max(started_at) AS t FROM ${r.names.executions} WHERE id = ANY($1::bigint[])`, [ids]))
        .rows[0]!.t;
    const stoppedAt = (await lastStart())!;
    expect(stoppedAt.getTime() - pausedAt.getTime()).toBeLessThanOrEqual(1_000);
    const startedBeforeRestart = (await r.pool.query(`SELECT count(*)::int AS n FROM public.control_spans WHERE grp = 'pausable'`)).rows[0]
      .n;
    expect(startedBeforeRestart).toBeLessThan(ids.length);

    // A restart: the new process reads the stored pause.
    await first.kill('SIGTERM');
    const second = worker('pausable-b', options);
    await ready([second]);
    const nudge = await r.enqueue('span', { group: 'pausable' }, { queue: 'pausable' });
    await claimRanSince(r, (await r.get(nudge))!.createdAt, 'pausable-b');
    expect((await r.pool.query(`SELECT count(*)::int AS n FROM public.control_spans WHERE grp = 'pausable'`)).rows[0].n).toBe(
      startedBeforeRestart,
    );
    expect(await lastStart()).toEqual(stoppedAt);

    // Resume: its NOTIFY restarts the claims (the poll is a minute away).
    const { rows } = await r.pool.query<{ t: Date }>('SELECT clock_timestamp() AS t');
    expect(await r.resume('pausable')).toBe(true);
    const done = await Promise.all([...ids, nudge].map((id) => r.wait(id, { timeoutMs: 60_000 })));
    expect(done.every((e) => e.status === 'completed')).toBe(true);
    // Nothing started between the pause (plus its second) and the resume.
    const between = await r.pool.query(
      `SELECT count(*)::int AS n FROM ${r.names.executions} WHERE id = ANY($1::bigint[]) AND started_at > $2 AND started_at < $3`,
      [[...ids, nudge], new Date(pausedAt.getTime() + 1_000), rows[0]!.t],
    );
    expect(between.rows[0].n).toBe(0);
    await second.kill('SIGTERM');
  });
});
