/**
 * Size limits at enqueue: a payload over maxPayloadBytes is refused with an error naming the
 * limit and how to change it; enqueueMany splits a batch into statements by size as well as by
 * count, so a valid batch whose payloads together exceed what one statement can carry (jsonb
 * caps the array at 256 MB) is stored whole, in one transaction.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Rhythm, RhythmValidationError } from 'rhythm';
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

it('enqueueMany of 10,000 payloads of 30 KB (300 MB) is stored whole, ids in input order', { timeout: 120_000 }, async () => {
  const filler = 'x'.repeat(30_000);
  const items = Array.from({ length: 10_000 }, (_, i) => ({ name: 'big', payload: { i, filler } }));
  const started = performance.now();
  const ids = await r.enqueueMany(items);
  console.log(`[enqueue-limits] 10,000 x 30 KB enqueued in ${Math.round(performance.now() - started)} ms`);
  expect(ids).toHaveLength(10_000);
  expect(ids.map(BigInt)).toEqual([...ids.map(BigInt)].sort((a, b) => (a < b ? -1 : 1)));
  expect(await count(r, r.names.workQueue)).toBe(10_000);
  const { rows } = await r.pool.query(
    `SELECT id::text, (payload->>'i')::int AS i, length(payload->>'filler') AS n FROM ${r.names.executions} WHERE id = ANY($1::bigint[])`,
    [[ids[0], ids[5_000], ids[9_999]]],
  );
  expect(rows.sort((a, b) => a.i - b.i)).toEqual([
    { id: ids[0], i: 0, n: 30_000 },
    { id: ids[5_000], i: 5_000, n: 30_000 },
    { id: ids[9_999], i: 9_999, n: 30_000 },
  ]);
  await r.pool.query(`TRUNCATE ${r.names.workQueue}, ${r.names.executions} CASCADE`);
});

it('a payload over maxPayloadBytes is refused, naming its size, the limit and how to change it', async () => {
  const big = { s: 'y'.repeat(16 * 1024 * 1024) };
  const err = await r.enqueue('big', big).catch((e) => e);
  expect(err).toBeInstanceOf(RhythmValidationError);
  expect(err.message).toMatch(
    /^payload is 16,777,224 bytes of JSON, more than the limit of 16,777,216 \(maxPayloadBytes\): .*Rhythm\.init\(\{ maxPayloadBytes \}\)/,
  );
  // Counted in UTF-8 bytes: 6 million euro signs are 18 MB.
  await expect(r.enqueue('big', '€'.repeat(6_000_000))).rejects.toThrow(/payload is 18,000,002 bytes/);
  await expect(
    r.enqueueMany([
      { name: 'ok', payload: 1 },
      { name: 'big', payload: big },
    ]),
  ).rejects.toThrow(/^enqueueMany item 1: payload is 16,777,224 bytes/);
  expect(await count(r, r.names.executions)).toBe(0);
});

it('maxPayloadBytes sets the limit', async () => {
  const small = await Rhythm.init({ databaseUrl: db.url, maxPayloadBytes: 1_000 });
  try {
    const exactly = 'z'.repeat(998); // 1,000 bytes with its quotes
    const id = await small.enqueue('ok', exactly, { delayMs: 3_600_000 });
    expect((await small.get(id))!.payload).toBe(exactly);
    await expect(small.enqueue('ok', `${exactly}z`)).rejects.toThrow(/payload is 1,001 bytes of JSON, more than the limit of 1,000/);
    await small.cancel(id);
  } finally {
    await small.shutdown();
  }
});

// Last: the tests above count whole tables.
it('enqueueMany of 10,000 keyed payloads of 30 KB is stored whole too, a key repeated across its statements kept once', {
  timeout: 180_000,
}, async () => {
  const filler = 'y'.repeat(30_000);
  const items = Array.from({ length: 10_000 }, (_, i) => ({
    name: 'keyed-big',
    payload: { i, filler },
    // The last item repeats the first one's key: it lands in another statement, and gets its execution.
    options: { queue: 'limits-keyed', uniqueKey: `big-${i === 9_999 ? 0 : i}` },
  }));
  const ids = await r.enqueueMany(items);
  expect(ids).toHaveLength(10_000);
  expect(ids[9_999]).toBe(ids[0]);
  expect(new Set(ids).size).toBe(9_999);
  expect(await count(r, r.names.executions, "queue = 'limits-keyed'")).toBe(9_999);
  const [first, middle] = await Promise.all([r.get(ids[0]!), r.get(ids[5_000]!)]);
  expect((first!.payload as { i: number }).i).toBe(0);
  expect((middle!.payload as { i: number }).i).toBe(5_000);
});
