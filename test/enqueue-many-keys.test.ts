/**
 * enqueueMany with task definitions (their defaults apply, the item's options win) and with
 * per-item unique keys: each keyed item gets what enqueue() one by one would give (a new
 * execution, the holder's id, or a replaced payload), duplicates within a batch included, and
 * concurrent batches from several Rhythm instances sharing keys make one execution per key
 * (without deadlocking each other).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rhythm, defineTask } from 'rhythm';
import { count, freshRhythm, type TestDatabase } from './helpers.js';

let db: TestDatabase;
let r: Rhythm;

beforeAll(async () => {
  ({ db, r } = await freshRhythm());
});
afterAll(async () => {
  await r?.shutdown();
  await db?.drop();
});

describe('enqueueMany with task definitions', () => {
  it("applies each definition's defaults, with the item's own options winning", async () => {
    const render = defineTask<{ page: number }, { bytes: number }>('render', {
      queue: 'pages',
      maxAttempts: 5,
      priority: 3,
      backoff: { baseMs: 50, maxMs: 500 },
    });
    const ids = await r.enqueueMany([
      { name: render, payload: { page: 1 } },
      { name: render, payload: { page: 2 }, options: { priority: 9, queue: 'pages-urgent' } },
      { name: 'plain', payload: 3 },
    ]);
    const [a, b, c] = await Promise.all(ids.map((id) => r.get(id)));
    expect(a).toMatchObject({ name: 'render', queue: 'pages', maxAttempts: 5, priority: 3, payload: { page: 1 } });
    expect(b).toMatchObject({ name: 'render', queue: 'pages-urgent', maxAttempts: 5, priority: 9, payload: { page: 2 } });
    expect(c).toMatchObject({ name: 'plain', queue: 'default', maxAttempts: 3, priority: 0 });
    const backoff = await r.pool.query(`SELECT backoff_base_ms, backoff_max_ms FROM ${r.names.executions} WHERE id = $1`, [ids[0]]);
    expect(backoff.rows[0]).toEqual({ backoff_base_ms: 50, backoff_max_ms: 500 });
  });
});

describe('enqueueMany with unique keys', () => {
  it("gives each keyed item what enqueue() one by one would: new, the holder, or the batch's own earlier item", async () => {
    const held = await r.enqueue('sync', { v: 0 }, { queue: 'keys', uniqueKey: 'user:1', delayMs: 3_600_000 });
    const ids = await r.enqueueMany([
      { name: 'sync', payload: { v: 1 }, options: { queue: 'keys', uniqueKey: 'user:1' } }, // held already
      { name: 'sync', payload: { v: 2 }, options: { queue: 'keys', uniqueKey: 'user:2' } }, // new
      { name: 'sync', payload: { v: 3 }, options: { queue: 'keys' } }, // no key
      { name: 'sync', payload: { v: 4 }, options: { queue: 'keys', uniqueKey: 'user:2' } }, // the batch's own item 1
      { name: 'sync', payload: { v: 5 }, options: { queue: 'keys', uniqueKey: 'user:3' } }, // new
    ]);
    expect(ids[0]).toBe(held);
    expect(new Set(ids).size).toBe(4);
    expect(ids[3]).toBe(ids[1]);
    expect((await r.get(held))!.payload).toEqual({ v: 0 }); // keep: unchanged
    expect((await r.get(ids[1]!))!.payload).toEqual({ v: 2 });
    expect(await count(r, r.names.executions, "queue = 'keys'")).toBe(4);
    expect((await r.get(ids[2]!))!).toMatchObject({ payload: { v: 3 }, status: 'queued' });
    expect((await r.get(ids[4]!))!).toMatchObject({ payload: { v: 5 }, status: 'queued' });
  });

  it("'replace' rewrites the holder's payload and run time, as enqueue() does, and later items of the batch win", async () => {
    const held = await r.enqueue('sync', { v: 'old' }, { queue: 'replace', uniqueKey: 'doc:1', delayMs: 3_600_000 });
    const ids = await r.enqueueMany([
      { name: 'sync', payload: { v: 'new' }, options: { queue: 'replace', uniqueKey: 'doc:1', uniqueMode: 'replace' } },
      { name: 'sync', payload: { v: 'a' }, options: { queue: 'replace', uniqueKey: 'doc:2', delayMs: 3_600_000 } },
      { name: 'sync', payload: { v: 'b' }, options: { queue: 'replace', uniqueKey: 'doc:2', uniqueMode: 'replace', delayMs: 7_200_000 } },
    ]);
    expect(ids[0]).toBe(held);
    expect(ids[2]).toBe(ids[1]);
    const replaced = (await r.get(held))!;
    expect(replaced).toMatchObject({ payload: { v: 'new' }, status: 'queued' }); // no delay given: runs now
    const second = (await r.get(ids[1]!))!;
    expect(second.payload).toEqual({ v: 'b' });
    expect(second.runAt.getTime() - second.createdAt.getTime()).toBeGreaterThan(3_600_000);
    expect(await count(r, r.names.executions, "queue = 'replace'")).toBe(2);
  });

  it('is all or none: a bad item anywhere writes nothing, naming the item', async () => {
    const before = await count(r, r.names.executions);
    await expect(
      r.enqueueMany([
        { name: 'sync', payload: 1, options: { uniqueKey: 'fine' } },
        { name: 'sync', payload: 2, options: { uniqueKey: '' } },
      ]),
    ).rejects.toThrow(/enqueueMany item 1: option uniqueKey must be a non-empty string/);
    expect(await count(r, r.names.executions)).toBe(before);
  });

  it('frees a key once its execution finished: the next batch makes a new one', async () => {
    const [first] = await r.enqueueMany([{ name: 'sync', payload: 1, options: { queue: 'free', uniqueKey: 'job:1' } }]);
    expect(await r.cancel(first!)).toBe(true);
    const [second] = await r.enqueueMany([{ name: 'sync', payload: 2, options: { queue: 'free', uniqueKey: 'job:1' } }]);
    expect(second).not.toBe(first);
    expect((await r.get(second!))!.status).toBe('queued');
  });

  it('concurrent batches from 4 Rhythm instances, keys shared in different orders, make one execution per key', async () => {
    const producers = await Promise.all([0, 1, 2, 3].map(() => Rhythm.init({ databaseUrl: db.url, autoMigrate: false, poolSize: 3 })));
    try {
      const keys = Array.from({ length: 50 }, (_, i) => `shared:${i}`);
      const batches = producers.flatMap((p, n) =>
        [0, 1, 2].map((round) => {
          // Each batch in its own order, so that batches meet on keys crosswise.
          const order = (n + round) % 2 === 0 ? keys : [...keys].reverse();
          return p.enqueueMany(
            order.map((k) => ({ name: 'shared', payload: { k, n, round }, options: { queue: 'shared', uniqueKey: k } })),
          );
        }),
      );
      const results = await Promise.all(batches);
      expect(await count(r, r.names.executions, "queue = 'shared'")).toBe(keys.length);
      // Every batch got, for each key, the one execution holding it.
      const holder = new Map<string, string>();
      const rows = await r.pool.query(`SELECT id::text, unique_key FROM ${r.names.executions} WHERE queue = 'shared'`);
      for (const row of rows.rows) holder.set(row.unique_key, row.id);
      results.forEach((ids, b) => {
        const order = (Math.floor(b / 3) + (b % 3)) % 2 === 0 ? keys : [...keys].reverse();
        expect(ids).toEqual(order.map((k) => holder.get(k)));
      });
    } finally {
      await Promise.all(producers.map((p) => p.shutdown()));
    }
  });
});
