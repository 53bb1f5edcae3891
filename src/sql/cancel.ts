/**
 * Cancels one execution from any process. A queued or scheduled one is removed from its
 * queue; a running one's worker is told on the cancel channel so its handler's signal
 * aborts. The execution is `cancelled` at once, and the running worker's later outcome is
 * fenced out (its work_queue row is gone); a group-concurrency slot it held is given back.
 *
 * Lock order matches claim and settle (work_queue before executions): the executions UPDATE
 * waits on the queue DELETEs through the sub-selects, so cancel cannot deadlock with them.
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';
import { freeSlots } from './groups.js';

const cancelStatement = statement('cancel', (n) => `
WITH unqueued AS (
  DELETE FROM ${n.workQueue} WHERE execution_id = $1 RETURNING execution_id, claimed_by, queue, group_key, holds_group_slot
), ${freeSlots(n, 'unqueued')}, unscheduled AS (
  DELETE FROM ${n.scheduledQueue} WHERE execution_id = $1 RETURNING execution_id
), cancelled AS (
  UPDATE ${n.executions} e
  SET status = 'cancelled', finished_at = now(), error = $2::jsonb
  WHERE e.id = $1 AND e.status IN ('scheduled', 'queued')
    AND (SELECT count(*) FROM unqueued) + (SELECT count(*) FROM unscheduled) >= 0
  RETURNING e.id
), told AS (
  SELECT pg_notify('${n.cancelChannel}', execution_id::text) FROM unqueued WHERE claimed_by IS NOT NULL
), announced AS (
  SELECT pg_notify('${n.doneChannel}', id::text) FROM cancelled
)
SELECT id FROM cancelled CROSS JOIN (SELECT count(*) FROM told) t CROSS JOIN (SELECT count(*) FROM announced) a`);

/** True if the execution was cancelled now; false if it had already finished (or does not exist). */
export async function cancelExecution(db: Queryable, n: SchemaNames, id: string, errorJson: string): Promise<boolean> {
  const res = await db.query({ ...cancelStatement(n), values: [id, errorJson] });
  return (res.rowCount ?? 0) > 0;
}
