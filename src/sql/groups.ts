/**
 * Group-concurrency slots (work_groups): the claim takes them; whatever ends a claim gives
 * them back through `freeSlots`, a fragment of its own statement, so the count never drifts
 * from the claimed rows; and the internal worker recounts them, so a path that ever forgot
 * (a row deleted by hand, say) cannot block a group for good.
 *
 * Every statement locks work_groups rows in (queue, group_key) order, as the claim's upsert
 * does, so concurrent claims and settles cannot deadlock on them.
 */
import type pg from 'pg';
import { statement } from './queryable.js';
import { inTransaction } from '../db/transaction.js';
import type { SchemaNames } from '../db/schema.js';

/**
 * CTEs (to append after `, `) that give back the slots of the work_queue rows in CTE `ended`
 * (which must return queue, group_key and holds_group_slot of each row as it was).
 */
export const freeSlots = (n: SchemaNames, ended: string) => `slot_counts AS (
  SELECT queue, group_key, count(*)::int AS n FROM ${ended} WHERE holds_group_slot GROUP BY queue, group_key
), slot_rows AS (
  SELECT g.queue, g.group_key, s.n FROM ${n.workGroups} g JOIN slot_counts s USING (queue, group_key)
  ORDER BY g.queue, g.group_key
  FOR UPDATE OF g
), freed_slots AS (
  UPDATE ${n.workGroups} g SET running = greatest(0, g.running - s.n)
  FROM slot_rows s WHERE g.queue = s.queue AND g.group_key = s.group_key
)`;

const lockStatement = statement(
  'groups_lock',
  (n) => `
SELECT queue, group_key FROM ${n.workGroups}
WHERE (queue, group_key) > ($2, $3)
ORDER BY queue, group_key
LIMIT $1
FOR UPDATE SKIP LOCKED`,
);

// Run after the rows are locked, with a snapshot of its own: every claim of these groups that
// committed is counted, none can commit meanwhile (the claim's upsert waits for the lock), and
// a settle that deleted its rows but waits to give the slots back is counted until it does.
const recountStatement = statement(
  'groups_recount',
  (n) => `
WITH locked AS (
  SELECT * FROM unnest($1::text[], $2::text[]) AS l(queue, group_key)
), actual AS (
  SELECT l.queue, l.group_key, (SELECT count(*) FROM ${n.workQueue} w
                                WHERE w.queue = l.queue AND w.group_key = l.group_key AND w.holds_group_slot)::int AS running
  FROM locked l
), fixed AS (
  UPDATE ${n.workGroups} g SET running = a.running
  FROM actual a WHERE g.queue = a.queue AND g.group_key = a.group_key AND g.running <> a.running AND a.running > 0
  RETURNING g.queue, g.group_key, a.running
), idle AS (
  DELETE FROM ${n.workGroups} g USING actual a WHERE g.queue = a.queue AND g.group_key = a.group_key AND a.running = 0
  RETURNING g.queue
)
SELECT (SELECT count(*) FROM fixed)::int AS fixed, (SELECT count(*) FROM idle)::int AS removed`,
);

export interface Recount {
  /** Groups whose count was wrong (and is now right). */
  fixed: number;
  /** Idle groups removed (a claim adds them back when needed). */
  removed: number;
  /** Where the next page starts; null once the last group was passed. */
  next: { queue: string; group: string } | null;
}

/**
 * Recounts the slots of up to `limit` groups after `after` (in key order) from the claimed
 * rows, and removes idle groups. Groups locked by a claim or settle right now are skipped:
 * they are checked on a later pass.
 */
export async function recountGroups(
  pool: pg.Pool,
  n: SchemaNames,
  limit: number,
  after: { queue: string; group: string } | null,
): Promise<Recount> {
  return inTransaction(pool, async (client) => {
    const locked = await client.query<{ queue: string; group_key: string }>({
      ...lockStatement(n),
      values: [limit, after?.queue ?? '', after?.group ?? ''],
    });
    if (locked.rows.length === 0) return { fixed: 0, removed: 0, next: null };
    const res = await client.query<{ fixed: number; removed: number }>({
      ...recountStatement(n),
      values: [locked.rows.map((r) => r.queue), locked.rows.map((r) => r.group_key)],
    });
    const last = locked.rows[locked.rows.length - 1]!;
    return { ...res.rows[0]!, next: locked.rows.length < limit ? null : { queue: last.queue, group: last.group_key } };
  });
}
