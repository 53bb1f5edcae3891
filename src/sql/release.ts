/**
 * Hands leases back at shutdown: the tasks become ready again at once (no waiting for the
 * lease to expire, no zombie `running` rows) and the aborted attempt is not counted. The
 * token is cleared so a heartbeat already on its way cannot lease the row again, and the
 * group-concurrency slots the leases held are given back.
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';
import { freeSlots } from './groups.js';

const releaseStatement = statement(
  'release',
  (n) => `
WITH held AS (
  SELECT w.execution_id, w.holds_group_slot FROM ${n.workQueue} w
  JOIN unnest($1::bigint[], $2::bigint[]) AS r(id, lease_token) ON w.execution_id = r.id AND w.lease_token = r.lease_token
  WHERE w.execution_id = ANY($1::bigint[])
  ORDER BY w.execution_id
  FOR UPDATE OF w
), released AS (
  UPDATE ${n.workQueue} w
  SET claimed_until = NULL, claimed_by = NULL, claimed_at = NULL, lease_token = NULL, attempts = w.attempts - 1,
      holds_group_slot = false
  FROM held
  WHERE w.execution_id = held.execution_id
  RETURNING w.execution_id, w.queue, w.group_key, held.holds_group_slot
), ${freeSlots(n, 'released')}, wake AS (
  SELECT pg_notify('${n.workChannel}', queue) FROM (SELECT DISTINCT queue FROM released) q
)
SELECT (SELECT count(*) FROM released)::int AS released, (SELECT count(*) FROM wake)::int AS woken`,
);

export async function releaseLeases(db: Queryable, n: SchemaNames, ids: string[], tokens: string[]): Promise<number> {
  const res = await db.query<{ released: number }>({ ...releaseStatement(n), values: [ids, tokens] });
  return res.rows[0]!.released;
}
