/**
 * Claims up to `limit` ready tasks of one queue in one statement, highest priority first,
 * then oldest; only the task names this worker serves. SKIP LOCKED lets any number of
 * dispatchers claim concurrently without waiting on or double-taking each other's rows.
 * Each claim gets a fresh lease token (the fence for completion and heartbeats).
 * Only the small work_queue table is written; the history row is only read (for the payload)
 * and is next written when the attempt settles. A work_queue row whose execution is no longer
 * queued (cancelled while being promoted) is not returned; its lease expires and recovery
 * deletes it.
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';

export interface ClaimedTask {
  id: string;
  name: string;
  /** The payload as JSON text: parsed where the handler runs (on a thread, if it has one). */
  payloadJson: string;
  attempt: number;
  maxAttempts: number;
  timeoutMs: number | null;
  leaseMs: number;
  leaseToken: string;
}

const claimStatement = statement('claim', (n) => `
WITH picked AS (
  SELECT execution_id FROM ${n.workQueue}
  WHERE queue = $1 AND claimed_until IS NULL AND name = ANY($2::text[])
  ORDER BY priority DESC, execution_id
  LIMIT $3
  FOR UPDATE SKIP LOCKED
), claimed AS (
  UPDATE ${n.workQueue} w
  SET attempts = w.attempts + 1,
      lease_token = nextval('${n.leaseTokenSeq}'),
      claimed_by = $4,
      claimed_at = now(),
      claimed_until = now() + coalesce(w.lease_ms, $5) * interval '1 millisecond'
  FROM picked
  WHERE w.execution_id = picked.execution_id
  RETURNING w.execution_id, w.priority, w.attempts, w.lease_token, coalesce(w.lease_ms, $5) AS lease_ms
)
SELECT e.id, e.name, e.payload::text AS payload_json, c.attempts, e.max_attempts, e.timeout_ms, c.lease_ms, c.lease_token
FROM claimed c JOIN ${n.executions} e ON e.id = c.execution_id
WHERE e.status = 'queued'
ORDER BY c.priority DESC, c.execution_id`);

export async function claimTasks(
  db: Queryable,
  n: SchemaNames,
  queue: string,
  names: string[],
  limit: number,
  workerId: string,
  leaseMs: number,
): Promise<ClaimedTask[]> {
  const res = await db.query({ ...claimStatement(n), values: [queue, names, limit, workerId, leaseMs] });
  return res.rows.map((r) => ({
    id: r.id,
    name: r.name,
    payloadJson: r.payload_json,
    attempt: r.attempts,
    maxAttempts: r.max_attempts,
    timeoutMs: r.timeout_ms,
    leaseMs: r.lease_ms,
    leaseToken: r.lease_token,
  }));
}
