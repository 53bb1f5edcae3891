/**
 * Enqueue inside the caller's own transaction (the `client` option): the task exists if and
 * only if the caller's write commits, and no worker sees it before the commit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { type Rhythm, RhythmValidationError, Worker } from 'rhythm';
import { count, freshRhythm, type TestDatabase } from './helpers.js';

const Q = 'tx';
let db: TestDatabase;
let r: Rhythm;
let app: pg.Pool; // the application's own pool, as a real caller would have
let running: Promise<void>;
const ran: string[] = [];

beforeAll(async () => {
  ({ db, r } = await freshRhythm());
  app = new pg.Pool({ connectionString: db.url, max: 3 });
  await app.query('CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL)');
  const w = new Worker(r, { queue: Q });
  w.task('ship-order', async (payload: { item: string }) => {
    ran.push(payload.item);
    return { shipped: payload.item };
  });
  running = w.start();
});
afterAll(async () => {
  await r?.shutdown();
  await running;
  await app?.end();
  await db?.drop();
});

async function inTransaction<T>(body: (client: pg.PoolClient) => Promise<T>, outcome: 'COMMIT' | 'ROLLBACK'): Promise<T> {
  const client = await app.connect();
  try {
    await client.query('BEGIN');
    const value = await body(client);
    await client.query(outcome);
    return value;
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  } finally {
    client.release();
  }
}

describe("enqueue with the caller's client", () => {
  it('rolled back: neither the order nor the task exists, and nothing runs', async () => {
    const id = await inTransaction(async (client) => {
      await client.query("INSERT INTO orders (item) VALUES ('rolled-back')");
      return r.enqueue('ship-order', { item: 'rolled-back' }, { queue: Q, client });
    }, 'ROLLBACK');

    expect(id).toMatch(/^\d+$/);
    expect(await r.get(id)).toBeNull();
    expect(await count(r, 'orders', "item = 'rolled-back'")).toBe(0);
    expect(await count(r, r.names.workQueue, 'execution_id = $1', [id])).toBe(0);
    // A task enqueued later on the same queue runs; the rolled-back one never does.
    const later = await r.enqueue('ship-order', { item: 'after-rollback' }, { queue: Q });
    await r.wait(later, { timeoutMs: 10_000 });
    expect(ran).not.toContain('rolled-back');
  });

  it('committed: both exist, and the task runs; not before the commit', async () => {
    const client = await app.connect();
    try {
      await client.query('BEGIN');
      await client.query("INSERT INTO orders (item) VALUES ('committed')");
      const id = await r.enqueue('ship-order', { item: 'committed' }, { queue: Q, client });

      // Until the commit, other connections (the worker's) see no such task.
      expect(await r.get(id)).toBeNull();
      const other = await r.enqueue('ship-order', { item: 'during-transaction' }, { queue: Q });
      await r.wait(other, { timeoutMs: 10_000 });
      expect(ran).not.toContain('committed');

      await client.query('COMMIT');
      const e = await r.wait(id, { timeoutMs: 10_000 });
      expect(e).toMatchObject({ status: 'completed', result: { shipped: 'committed' } });
      expect(await count(r, 'orders', "item = 'committed'")).toBe(1);
      expect(ran.filter((x) => x === 'committed')).toHaveLength(1);
    } finally {
      client.release();
    }
  });

  it('enqueueMany with a client follows the transaction too', async () => {
    const items = ['m1', 'm2', 'm3'].map((item) => ({ name: 'ship-order', payload: { item }, options: { queue: Q } }));
    const rolledBack = await inTransaction((client) => r.enqueueMany(items, { client }), 'ROLLBACK');
    expect(rolledBack).toHaveLength(3);
    for (const id of rolledBack) expect(await r.get(id)).toBeNull();

    const committed = await inTransaction((client) => r.enqueueMany(items, { client }), 'COMMIT');
    const done = await Promise.all(committed.map((id) => r.wait(id, { timeoutMs: 10_000 })));
    expect(done.map((e) => e.result)).toEqual([{ shipped: 'm1' }, { shipped: 'm2' }, { shipped: 'm3' }]);
  });

  it('a delayed task enqueued in a rolled-back transaction leaves nothing in the scheduled queue', async () => {
    const id = await inTransaction(
      (client) => r.enqueue('ship-order', { item: 'later' }, { queue: Q, delayMs: 60_000, client }),
      'ROLLBACK',
    );
    expect(await r.get(id)).toBeNull();
    expect(await count(r, r.names.scheduledQueue, 'execution_id = $1', [id])).toBe(0);
  });

  it('a refused enqueue inside the transaction throws before touching it, so the caller can still commit', async () => {
    await inTransaction(async (client) => {
      await client.query("INSERT INTO orders (item) VALUES ('kept')");
      await expect(r.enqueue('ship-order', { n: 10n }, { queue: Q, client })).rejects.toThrow(/BigInt/);
      // The transaction is not aborted: further statements work.
      await client.query("INSERT INTO orders (item) VALUES ('kept-2')");
    }, 'COMMIT');
    expect(await count(r, 'orders', "item IN ('kept', 'kept-2')")).toBe(2);
  });

  it("enqueueMany refuses a client given inside an item's options instead of silently enqueuing outside the transaction", async () => {
    let err: unknown;
    await inTransaction(async (client) => {
      err = await r
        .enqueueMany([{ name: 'ship-order', payload: { item: 'item-level-client' }, options: { queue: 'tx-nobody', client } as never }])
        .then(
          () => undefined,
          (e: unknown) => e,
        );
    }, 'ROLLBACK');
    expect(await count(r, r.names.executions, "payload->>'item' = 'item-level-client'")).toBe(0);
    expect(err).toBeInstanceOf(RhythmValidationError);
  });
});
