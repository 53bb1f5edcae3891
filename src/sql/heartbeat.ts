/**
 * Extends the leases of many running tasks in one statement. Returns the lease tokens still
 * ours: a task missing from the answer was cancelled, handed back, or taken over after expiry.
 * Rows are locked in execution_id order, as settle's DELETE takes them, so the two cannot
 * deadlock.
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';

const heartbeatStatement = statement(
  'heartbeat',
  (n) => `
WITH held AS (
  SELECT w.execution_id FROM ${n.workQueue} w
  JOIN unnest($1::bigint[], $2::bigint[]) AS h(id, lease_token) ON w.execution_id = h.id AND w.lease_token = h.lease_token
  WHERE w.execution_id = ANY($1::bigint[]) AND w.claimed_until IS NOT NULL
  ORDER BY w.execution_id
  FOR UPDATE OF w
)
UPDATE ${n.workQueue} w
SET claimed_until = now() + coalesce(w.lease_ms, $3) * interval '1 millisecond'
FROM held
WHERE w.execution_id = held.execution_id
RETURNING w.lease_token`,
);

export async function extendLeases(db: Queryable, n: SchemaNames, ids: string[], tokens: string[], leaseMs: number): Promise<Set<string>> {
  const res = await db.query<{ lease_token: string }>({ ...heartbeatStatement(n), values: [ids, tokens, leaseMs] });
  return new Set(res.rows.map((r) => r.lease_token));
}
