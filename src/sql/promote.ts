/**
 * Moves due executions from scheduled_queue to work_queue in batches (the internal worker's
 * first duty), then wakes the dispatchers of those queues with one NOTIFY per queue.
 * SKIP LOCKED lets every process run this at once without promoting a row twice.
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';

const promoteStatement = statement(
  'promote',
  (n) => `
WITH due AS (
  SELECT execution_id FROM ${n.scheduledQueue}
  WHERE run_at <= now()
  ORDER BY run_at
  LIMIT $1
  FOR UPDATE SKIP LOCKED
), taken AS (
  DELETE FROM ${n.scheduledQueue} s USING due WHERE s.execution_id = due.execution_id
  RETURNING s.execution_id
), queued AS (
  UPDATE ${n.executions} e SET status = 'queued'
  FROM taken t
  WHERE e.id = t.execution_id AND e.status = 'scheduled'
  RETURNING e.id, e.queue, e.name, e.priority, e.lease_ms, e.attempts, e.payload_bytes, e.group_key
), ready AS (
  INSERT INTO ${n.workQueue} (execution_id, queue, name, priority, lease_ms, attempts, payload_bytes, group_key)
  SELECT id, queue, name, priority, lease_ms, attempts, payload_bytes, group_key FROM queued
), wake AS (
  SELECT pg_notify('${n.workChannel}', queue) FROM (SELECT DISTINCT queue FROM queued) q
)
SELECT (SELECT count(*) FROM queued)::int AS promoted, (SELECT count(*) FROM wake)::int AS woken`,
);

/** Returns how many executions were promoted (fewer than `limit` means none are left due). */
export async function promoteDue(db: Queryable, n: SchemaNames, limit: number): Promise<number> {
  const res = await db.query<{ promoted: number }>({ ...promoteStatement(n), values: [limit] });
  return res.rows[0]!.promoted;
}

// Measured on the database's clock, like promotion itself: an app clock that runs ahead would
// otherwise wake the internal worker early, again and again.
const nextDueStatement = statement(
  'next_due',
  (n) => `
SELECT extract(epoch FROM min(run_at) - now()) * 1000 AS ms FROM ${n.scheduledQueue}`,
);

/** Milliseconds until the earliest scheduled execution is due (null if none), so the internal worker can sleep until then. */
export async function msUntilNextDue(db: Queryable, n: SchemaNames): Promise<number | null> {
  const res = await db.query<{ ms: string | null }>(nextDueStatement(n));
  const ms = res.rows[0]!.ms;
  return ms === null ? null : Number(ms);
}
