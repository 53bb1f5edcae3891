/**
 * wait() at scale and under faults: ten thousand concurrent waits share a few dozen reads;
 * those reads need no connection of the pools that carry outcome writes and lease
 * extensions; a timeout counts from the call, whatever the database is doing (a table
 * locked, a server that does not answer); and a wait resolves when its completion was
 * announced while the LISTEN connection was down.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import pg from 'pg';
import { pino } from 'pino';
import { Rhythm, WaitTimeoutError, Worker } from 'rhythm';
import { createMigratedTestDatabase, type TestDatabaseHandle } from './support/db.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { countWaitReads, deferred, isSettled } from './helpers.js';
import { fromBinaryTime } from '../src/sql/finished.js';

const Q = 'wait-scale';
let db: TestDatabaseHandle;
/** Runs the quick tasks of every test, as another process would. */
let rw: Rhythm;
let running: Promise<void>;
const quiet = () => pino({ level: 'warn' });

beforeAll(async () => {
  db = await createMigratedTestDatabase('rhythm_wait_scale');
  rw = await Rhythm.init({ databaseUrl: db.url, logger: quiet() });
  const w = new Worker(rw, { queue: Q });
  w.task('quick', (p: unknown) => ({ echo: p }));
  running = w.start();
});
afterAll(async () => {
  await rw?.shutdown();
  await running;
  await db?.drop();
});

/** How many of this database's wait-pool connections are blocked on a lock. */
async function blockedReads(client: pg.ClientBase): Promise<number> {
  const res = await client.query(
    `SELECT count(*)::int AS n FROM pg_stat_activity
     WHERE datname = current_database() AND application_name = 'rhythm-wait' AND wait_event_type = 'Lock'`,
  );
  return res.rows[0].n;
}

describe('wait() at scale', () => {
  it('10,000 concurrent waits are served by at most 100 read statements', { timeout: 180_000 }, async () => {
    const N = 10_000;
    const r = await Rhythm.init({ databaseUrl: db.url, logger: quiet() });
    const rh = await Rhythm.init({ databaseUrl: db.url, logger: quiet() });
    // The tasks are all held until every one has started, then finish together: the count
    // below then depends on coalescing, not on how fast this machine drains them.
    let started = 0;
    const allStarted = deferred();
    const release = deferred();
    const w = new Worker(rh, { queue: 'held', concurrency: N, batchSize: 1_000 });
    w.task('held', async (i: number) => {
      if (++started === N) allStarted.resolve();
      await release.promise;
      return i * 2;
    });
    const ids = await r.enqueueMany(Array.from({ length: N }, (_, i) => ({ name: 'held', payload: i, options: { queue: 'held' } })));
    const reads = countWaitReads(r);
    const heldRunning = w.start();
    try {
      const waits = ids.map((id) => r.wait(id, { timeoutMs: 150_000 }));
      await allStarted.promise;
      release.resolve();
      const done = await Promise.all(waits);
      for (const [i, e] of done.entries())
        expect(e).toMatchObject({ id: ids[i], status: 'completed', result: i * 2, payload: i, attempts: 1 });
      expect(reads.state.ids).toBeGreaterThanOrEqual(N); // each was read (once to start, and once done)
      expect(reads.state.calls).toBeLessThanOrEqual(100); // a read per wait would be 10,000 (20,000 with the re-reads)
    } finally {
      reads.restore();
      await rh.shutdown();
      await heldRunning;
      await r.shutdown();
    }
  });

  it('waits resolve while every connection of the main and lease pools is taken', { timeout: 60_000 }, async () => {
    const r = await Rhythm.init({ databaseUrl: db.url, logger: quiet(), poolSize: 1, leasePoolSize: 1 });
    const ids = await r.enqueueMany([1, 2, 3].map((i) => ({ name: 'quick', payload: i, options: { queue: Q } })));
    const held = [await r.pool.connect(), await r.leasePool.connect()];
    try {
      expect([r.pool.totalCount, r.pool.idleCount, r.leasePool.totalCount, r.leasePool.idleCount]).toEqual([1, 0, 1, 0]);
      const done = await r.waitMany(ids, { timeoutMs: 30_000 });
      expect(done.map((e) => [e.id, e.status, e.result])).toEqual(ids.map((id, i) => [id, 'completed', { echo: i + 1 }]));
      expect(await r.wait(ids[0]!, { timeoutMs: 30_000 })).toEqual(done[0]);
      expect(r.pool.waitingCount).toBe(0); // nothing queued for the taken connections
      expect(r.leasePool.waitingCount).toBe(0);
      const own = await held[0]!.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'rhythm-wait'`,
      );
      expect(own.rows[0].n).toBeGreaterThanOrEqual(1); // the reads ran on connections of their own
    } finally {
      for (const c of held) c.release();
      await r.shutdown();
    }
  });
});

describe('wait() reads what get() reads', () => {
  it('timestamps in binary form become the Dates pg makes of their text, from 4713 BC to the year 200,000', async () => {
    const times = [
      '2000-01-01 00:00:00+00',
      '1999-12-31 23:59:59.999999+00',
      '1999-12-31 23:59:59.9995+00',
      '1970-01-01 00:00:00.0005+00',
      '1969-12-31 23:59:59.000001+00',
      '2024-02-29 12:34:56.789123+00',
      '2024-06-01 00:00:00.001+02',
      '2099-12-31 23:59:59.999999+00',
      '2200-01-01 00:00:00.5+00',
      '9999-12-31 23:59:59.999999+00',
      '200000-01-01 00:00:00.123456+00',
      '0001-01-01 00:00:00.25+00',
      '0001-12-31 23:59:59.999+00 BC',
      '4713-01-01 00:00:00+00 BC',
      'now',
    ];
    const res = await rw.pool.query(`SELECT t, encode(timestamptz_send(t), 'hex') AS hex FROM unnest($1::timestamptz[]) AS t`, [times]);
    expect(res.rows).toHaveLength(times.length);
    for (const row of res.rows) expect([row.hex, fromBinaryTime(row.hex)]).toEqual([row.hex, row.t]);
  });

  it('a waited execution equals get() of it, with times before 2000 too', async () => {
    const runAt = new Date('1999-12-31T23:59:59.999Z');
    const id = await rw.enqueue('quick', { deep: [1, { x: 'é' }] }, { queue: Q, runAt, priority: 3 });
    const e = await rw.wait(id, { timeoutMs: 30_000 });
    expect(e).toMatchObject({ id, status: 'completed', result: { echo: { deep: [1, { x: 'é' }] } }, priority: 3, runAt });
    expect(e).toEqual(await rw.get(id));
    const [again] = await rw.waitMany([id]);
    expect(again).toEqual(e);
  });
});

describe('wait() timeouts count from the call', () => {
  it('with the executions table locked, a wait rejects with WaitTimeoutError while its read is still blocked', {
    timeout: 60_000,
  }, async () => {
    const r = await Rhythm.init({ databaseUrl: db.url, logger: quiet() });
    const [warm] = await r.enqueueMany([{ name: 'quick', payload: 'warm', options: { queue: Q } }]);
    await r.wait(warm!, { timeoutMs: 30_000 }); // the LISTEN connection and the wait pool are open
    const id = await r.enqueue('nobody-serves', {}, { queue: 'nobody' });
    const locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query(`LOCK TABLE ${r.names.executions} IN ACCESS EXCLUSIVE MODE`);
    try {
      const outcome = r.wait(id, { timeoutMs: 1_000 }).then(
        () => 'resolved',
        (e: unknown) => e,
      );
      await expect.poll(() => blockedReads(locker), { timeout: 30_000 }).toBe(1); // its read waits for the lock
      const err = await outcome;
      expect(err).toBeInstanceOf(WaitTimeoutError);
      expect((err as Error).message).toBe(`execution ${id} did not finish within 1000 ms`);
      expect(await blockedReads(locker)).toBe(1); // the read is still stuck: the timeout did not wait for it
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
    }
    // Once the lock is gone, reads go on.
    expect(await r.cancel(id)).toBe(true);
    expect(await r.wait(id, { timeoutMs: 30_000 })).toMatchObject({ id, status: 'cancelled' });
    await r.shutdown();
  });

  it('with the server silent (no answer to anything), a first wait rejects with WaitTimeoutError, not a connection error', {
    timeout: 60_000,
  }, async () => {
    const proxy = await TcpProxy.start(db.url);
    // The connect timeout is longer than the wait's: a connection error would come later.
    const r = await Rhythm.init({ databaseUrl: proxy.via(db.url), logger: quiet(), connectTimeoutMs: 5_000, queryTimeoutMs: 5_000 });
    try {
      const id = await r.enqueue('nobody-serves', {}, { queue: 'nobody' });
      proxy.blackhole(); // the LISTEN connection and the wait pool are not open yet: both must connect
      const err = await r.wait(id, { timeoutMs: 1_000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WaitTimeoutError);
      const many = await r.waitMany([id, id], { timeoutMs: 500 }).catch((e: unknown) => e);
      expect(many).toBeInstanceOf(WaitTimeoutError);
      expect((many as Error).message).toMatch(/^2 of 2 executions did not finish within 500 ms/);
    } finally {
      await proxy.close(); // drops every connection: nothing is left waiting on a silent one
      await r.shutdown({ timeoutMs: 1_000 });
    }
  });
});

describe('wait() past a read that hangs', () => {
  it('a read stuck on a silent connection does not hold up the reads of later waits', { timeout: 60_000 }, async () => {
    const proxy = await TcpProxy.start(db.url);
    const r = await Rhythm.init({ databaseUrl: proxy.via(db.url), logger: quiet(), queryTimeoutMs: 2_000 });
    try {
      const [a, b, warm] = await rw.enqueueMany(['a', 'b', 'warm'].map((p) => ({ name: 'quick', payload: p, options: { queue: Q } })));
      await rw.waitMany([a!, b!, warm!], { timeoutMs: 30_000 });
      await r.wait(warm!, { timeoutMs: 30_000 }); // one wait connection open, idle
      proxy.blackhole();
      proxy.restore(); // the open connections stay silent; new ones work
      const reads = countWaitReads(r);
      const first = r.wait(a!, { timeoutMs: 30_000 });
      expect(await isSettled(first)).toBe(false);
      await new Promise((resolve) => setTimeout(resolve, 1_200)); // longer than a read may hold up the next
      // Its read hangs on the silent connection; this one's goes out on a new connection.
      expect(await r.wait(b!, { timeoutMs: 30_000 })).toMatchObject({ id: b, status: 'completed', result: { echo: 'b' } });
      expect(reads.state.calls).toBe(2);
      expect(await isSettled(first)).toBe(false);
      // The stuck read times out (queryTimeoutMs), is retried, and the first wait resolves too.
      expect(await first).toMatchObject({ id: a, status: 'completed', result: { echo: 'a' } });
      reads.restore();
    } finally {
      await proxy.close();
      await r.shutdown({ timeoutMs: 1_000 });
    }
  });
});

describe('wait() across a lost LISTEN connection', () => {
  it('a completion announced while the connection was down resolves the wait once it is back', { timeout: 60_000 }, async () => {
    const proxy = await TcpProxy.start(db.url);
    const logs: { msg?: string }[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line));
        cb();
      },
    });
    const r = await Rhythm.init({ databaseUrl: proxy.via(db.url), logger: pino({ level: 'info' }, sink), connectTimeoutMs: 2_000 });
    try {
      const id = await rw.enqueue('nobody-serves', {}, { queue: 'nobody' });
      const reads = countWaitReads(r);
      const waiting = r.wait(id, { timeoutMs: 50_000 });
      await await reads.state.first; // it has read the execution once (not finished)
      const readsBefore = reads.state.calls;
      await proxy.down(); // every connection of r is cut, new ones refused
      expect(await rw.cancel(id)).toBe(true); // announced on `done`, which r cannot hear now
      await proxy.up();
      expect(await waiting).toMatchObject({ id, status: 'cancelled' });
      // Nothing else would have read it again: the reconnect did.
      expect(logs.some((l) => l.msg === 'LISTEN connection re-established')).toBe(true);
      expect(reads.state.calls).toBeGreaterThan(readsBefore);
      reads.restore();
    } finally {
      await r.shutdown({ timeoutMs: 1_000 });
      await proxy.close();
    }
  });
});
