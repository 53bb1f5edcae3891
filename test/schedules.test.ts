/**
 * Cron schedules on a real Postgres: three internal workers fire each due time of a
 * per-second schedule exactly once; catch-up after an outage in each mode (next_run_at moved
 * into the past rather than waiting); upserts, sync, NOTIFY wake-up and bad input.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rhythm, RhythmValidationError, defineTask } from 'rhythm';
import { InternalWorker } from '../src/internal/internal-worker.js';
import { freshRhythm, until, type TestDatabase } from './helpers.js';

describe('cron schedules', () => {
  let db: TestDatabase;
  let r: Rhythm;

  beforeAll(async () => {
    ({ db, r } = await freshRhythm());
  });
  afterAll(async () => {
    await r?.shutdown();
    await db?.drop();
  });

  const firedAt = async (task: string) =>
    (
      await r.pool.query<{ run_at: Date; n: number }>(
        `SELECT run_at, count(*)::int AS n FROM ${r.names.executions} WHERE name = $1 GROUP BY run_at ORDER BY run_at`,
        [task],
      )
    ).rows;

  it('three schedulers (separate Rhythm instances) fire each due time of a per-second schedule exactly once', async () => {
    const others = await Promise.all([0, 1, 2].map(() => Rhythm.init({ databaseUrl: db.url, autoMigrate: false, poolSize: 3 })));
    try {
      await Promise.all(others.map((o) => o.startInternalWorker({ tickMs: 200 })));
      const change = await r.schedule('every-second', { cron: '* * * * * *', task: 'tick', payload: { from: 'cron' }, catchUp: 'all' });
      expect(change).toBe('created');
      await until('8 fires', async () => (await firedAt('tick')).length >= 8, 20_000);
      await r.unschedule('every-second');
    } finally {
      await Promise.all(others.map((o) => o.shutdown()));
    }
    const rows = await firedAt('tick');
    expect(rows.length).toBeGreaterThanOrEqual(8);
    // One execution per due time, on whole seconds, and no due time left out in between.
    for (const row of rows) {
      expect(row.n).toBe(1);
      expect(row.run_at.getTime() % 1000).toBe(0);
    }
    const span = (rows.at(-1)!.run_at.getTime() - rows[0]!.run_at.getTime()) / 1000 + 1;
    expect(rows.length).toBe(span);
    const one = await r.pool.query(`SELECT payload, queue, status FROM ${r.names.executions} WHERE name = 'tick' LIMIT 1`);
    expect(one.rows[0]).toMatchObject({ payload: { from: 'cron' }, queue: 'default', status: 'queued' });
  });

  describe('catch-up after a 3-fire outage', () => {
    // An hourly schedule at the minute half an hour from now: its last three due times were
    // 30, 90 and 150 minutes ago, all missed; the next is 30 minutes ahead.
    const minute = (new Date().getUTCMinutes() + 30) % 60;
    const cron = `${minute} * * * *`;

    for (const [mode, expected] of [
      ['none', 0],
      ['last', 1],
      ['all', 3],
    ] as const) {
      it(`catchUp '${mode}' fires ${expected}`, async () => {
        const task = `catch-up-${mode}`;
        await r.schedule(task, { cron, task, catchUp: mode });
        const before = (await r.schedules()).find((s) => s.name === task)!;
        expect(before.nextRunAt!.getTime()).toBeGreaterThan(Date.now());
        await r.pool.query(`UPDATE ${r.names.schedules} SET next_run_at = now() - interval '170 minutes' WHERE name = $1`, [task]);

        const iw = new InternalWorker(r.pool, r.names, r.backoff, r.log, {});
        const pass = await iw.tick();
        expect(pass.fired).toBe(expected);
        const rows = await firedAt(task);
        expect(rows).toHaveLength(expected);
        const ago = rows.map((row) => Math.round((Date.now() - row.run_at.getTime()) / 60_000));
        if (mode === 'last') expect(ago[0]).toBeGreaterThanOrEqual(29);
        if (mode === 'all') expect(ago[0]! - ago[2]!).toBe(120);
        const after = (await r.schedules()).find((s) => s.name === task)!;
        expect(after.nextRunAt).toEqual(before.nextRunAt);
        expect(after.lastFiredAt).toEqual(expected === 0 ? null : rows.at(-1)!.run_at);
        // A second pass finds nothing due.
        expect((await iw.tick()).fired).toBe(0);
        await r.unschedule(task);
      });
    }
  });

  it('lists the next fire times; an identical upsert changes nothing, a new expression replans', async () => {
    expect(
      await r.schedule('nightly-report', {
        cron: '0 3 * * *',
        timezone: 'Europe/Paris',
        task: 'submit-report',
        payload: { kind: 'nightly' },
        catchUp: 'last',
      }),
    ).toBe('created');
    const [s] = (await r.schedules()).filter((x) => x.name === 'nightly-report');
    expect(s).toMatchObject({
      cron: '0 3 * * *',
      timezone: 'Europe/Paris',
      task: 'submit-report',
      payload: { kind: 'nightly' },
      queue: 'default',
      catchUp: 'last',
      synced: false,
    });
    expect(s!.nextRuns).toHaveLength(5);
    expect(s!.nextRuns[0]).toEqual(s!.nextRunAt);
    for (let i = 1; i < 5; i++) {
      const hours = (s!.nextRuns[i]!.getTime() - s!.nextRuns[i - 1]!.getTime()) / 3_600_000;
      expect([23, 24, 25]).toContain(hours);
    }
    const paris = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Paris', hour: '2-digit', minute: '2-digit' });
    for (const t of s!.nextRuns) expect(paris.format(t)).toBe('03:00');

    expect(
      await r.schedule('nightly-report', {
        cron: '0 3 * * *',
        timezone: 'Europe/Paris',
        task: 'submit-report',
        payload: { kind: 'nightly' },
        catchUp: 'last',
      }),
    ).toBe('unchanged');
    // A payload change keeps the planned time; an expression change replans it.
    expect(
      await r.schedule('nightly-report', {
        cron: '0 3 * * *',
        timezone: 'Europe/Paris',
        task: 'submit-report',
        payload: { kind: 'v2' },
        catchUp: 'last',
      }),
    ).toBe('updated');
    const [same] = (await r.schedules()).filter((x) => x.name === 'nightly-report');
    expect(same!.nextRunAt).toEqual(s!.nextRunAt);
    expect(same!.payload).toEqual({ kind: 'v2' });
    expect(await r.schedule('nightly-report', { cron: '0 4 * * *', timezone: 'Europe/Paris', task: 'submit-report' })).toBe('updated');
    const [moved] = (await r.schedules()).filter((x) => x.name === 'nightly-report');
    expect(paris.format(moved!.nextRunAt!)).toBe('04:00');
    expect(await r.unschedule('nightly-report')).toBe(true);
    expect(await r.unschedule('nightly-report')).toBe(false);
  });

  it('takes queue, attempts and backoff from a task definition', async () => {
    const report = defineTask<{ day: string }, void>('typed-report', {
      queue: 'reports',
      maxAttempts: 7,
      backoff: { baseMs: 10, maxMs: 100 },
    });
    await r.schedule('typed', { cron: '0 0 1 1 *', task: report, payload: { day: 'x' } });
    const [s] = (await r.schedules()).filter((x) => x.name === 'typed');
    expect(s).toMatchObject({ task: 'typed-report', queue: 'reports', maxAttempts: 7, backoff: { baseMs: 10, maxMs: 100 } });
    await r.unschedule('typed');
  });

  it('syncSchedules creates, updates and removes what a config declares, and leaves API schedules alone', async () => {
    await r.schedule('by-api', { cron: '0 0 * * *', task: 'api-task' });
    const first = await r.syncSchedules({
      a: { cron: '0 1 * * *', task: 'a' },
      b: { cron: '0 2 * * *', task: 'b' },
    });
    expect(first).toEqual({ created: ['a', 'b'], updated: [], unchanged: [], removed: [] });
    const second = await r.syncSchedules({
      a: { cron: '0 1 * * *', task: 'a' },
      c: { cron: '0 3 * * *', task: 'c', timezone: 'America/New_York' },
    });
    expect(second).toEqual({ created: ['c'], updated: [], unchanged: ['a'], removed: ['b'] });
    expect((await r.schedules()).map((s) => s.name).sort()).toEqual(['a', 'by-api', 'c']);
    // One bad entry rejects the whole sync before anything is written.
    await expect(r.syncSchedules({ a: { cron: '0 1 * * *', task: 'a' }, bad: { cron: 'every day', task: 'x' } })).rejects.toThrow(
      /schedule "bad": invalid cron expression "every day"/,
    );
    expect((await r.schedules()).map((s) => s.name).sort()).toEqual(['a', 'by-api', 'c']);
    expect((await r.syncSchedules({})).removed).toEqual(['a', 'c']);
    expect((await r.schedules()).map((s) => s.name)).toEqual(['by-api']);
    await r.unschedule('by-api');
  });

  it('a schedule created in another process wakes a sleeping internal worker through NOTIFY', async () => {
    const scheduler = await Rhythm.init({ databaseUrl: db.url, autoMigrate: false, poolSize: 3 });
    try {
      // A minute between planned passes: only the notification can make it fire within seconds.
      const iw = await scheduler.startInternalWorker({ tickMs: 60_000 });
      await until('the first pass', async () => {
        const l = await scheduler.listener();
        return l.listenerCount('schedule') > 0;
      });
      await iw.tick();
      const t0 = Date.now();
      await r.schedule('woken', { cron: '* * * * * *', task: 'woken' });
      await until('a fire', async () => (await firedAt('woken')).length > 0, 10_000);
      expect(Date.now() - t0).toBeLessThan(30_000);
      await r.unschedule('woken');
    } finally {
      await scheduler.shutdown();
    }
  });

  it('refuses bad input with an error naming it', async () => {
    const bad = async (name: unknown, options: unknown) => {
      const err = await r.schedule(name as string, options as never).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RhythmValidationError);
      return (err as Error).message;
    };
    expect(await bad('x', { cron: '0 25 * * *', task: 't' })).toMatch(/schedule "x": invalid cron expression "0 25 \* \* \*": .*hour/);
    expect(await bad('x', { cron: '0 3 * * *', task: 't', timezone: 'Europe/Pariss' })).toMatch(
      /schedule "x": unknown time zone "Europe\/Pariss"/,
    );
    expect(await bad('x', { cron: '0 3 * * *', task: 't', catchUp: 'some' })).toMatch(
      /catchUp must be 'none', 'last' or 'all', got "some"/,
    );
    expect(await bad('x', { cron: '0 3 * * *', task: 't', every: 1 })).toMatch(/unknown schedule option "every"/);
    expect(await bad('x', { cron: '0 3 * * *' })).toMatch(/task name must be a string/);
    expect(await bad('x', { cron: '0 3 * * *', task: 't', payload: () => 1 })).toMatch(/payload/);
    expect(await bad('', { cron: '0 3 * * *', task: 't' })).toMatch(/schedule name/);
    expect(await r.schedules()).toEqual([]);
  });
});
