/**
 * Extends the leases of many running tasks in one statement. Returns the ids whose lease is
 * still ours: a task missing from the answer was cancelled or taken over after expiry.
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';

const heartbeatStatement = statement('heartbeat', (n) => `
UPDATE ${n.workQueue} w
SET claimed_until = now() + coalesce(w.lease_ms, $3) * interval '1 millisecond'
FROM unnest($1::bigint[], $2::bigint[]) AS h(id, lease_token)
WHERE w.execution_id = h.id AND w.lease_token = h.lease_token
RETURNING w.execution_id AS id`);

export async function extendLeases(db: Queryable, n: SchemaNames, ids: string[], tokens: string[], leaseMs: number): Promise<Set<string>> {
  const res = await db.query<{ id: string }>({ ...heartbeatStatement(n), values: [ids, tokens, leaseMs] });
  return new Set(res.rows.map((r) => r.id));
}
