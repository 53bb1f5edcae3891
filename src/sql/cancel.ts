/**
 * Cancels executions and every unfinished descendant (the children a workflow started, theirs,
 * and so on) from any process, in one statement: a recursive walk down parent_id. Queued and
 * scheduled ones never run; running ones' workers are told on the cancel channel, so their
 * handlers' signals abort. Each becomes `cancelled` at once, and a running worker's later
 * outcome is fenced out (its work_queue row is gone). A workflow waiting on a cancelled child
 * is woken (its await throws a CancelledError), unless it is itself being cancelled.
 *
 * An activation committing new children just as the statement runs: the statement waits for
 * its lock on the workflow row and cancels the workflow, but the children it committed were
 * not in the statement's snapshot. So the statement runs again until it finds nothing left;
 * once a workflow is cancelled, no activation of it can commit children (they are fenced on
 * its status), so this ends, almost always after the second run.
 *
 * Lock order matches claim and settle (work_queue before executions): the executions UPDATE
 * waits on the queue DELETEs through the sub-selects, so cancel cannot deadlock with them.
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';
import { wakeParentsCtes } from './wake-parents.js';

/** Chunks of at most 400 ids keep one NOTIFY payload under Postgres' 8,000-byte limit. */
const NOTIFY_IDS_PER_MESSAGE = 400;

const cancelStatement = statement('cancel_tree', (n) => `
WITH RECURSIVE tree AS (
  SELECT id FROM ${n.executions} WHERE id = ANY ($1::bigint[])
  UNION ALL
  SELECT c.id FROM ${n.executions} c JOIN tree t ON c.parent_id = t.id
), unqueued AS (
  DELETE FROM ${n.workQueue} WHERE execution_id IN (SELECT id FROM tree) RETURNING execution_id, claimed_by
), unscheduled AS (
  DELETE FROM ${n.scheduledQueue} WHERE execution_id IN (SELECT id FROM tree) RETURNING execution_id
), cancelled AS (
  UPDATE ${n.executions} e
  SET status = 'cancelled', finished_at = now(), error = $2::jsonb
  WHERE e.id IN (SELECT id FROM tree) AND e.status IN ('scheduled', 'queued')
    AND (SELECT count(*) FROM unqueued) + (SELECT count(*) FROM unscheduled) >= 0
  RETURNING e.id, e.parent_id, e.parent_seq, e.status
), told AS (
  SELECT pg_notify('${n.cancelChannel}', string_agg(execution_id::text, ','))
  FROM (SELECT execution_id, (row_number() OVER () - 1) / ${NOTIFY_IDS_PER_MESSAGE} AS chunk FROM unqueued WHERE claimed_by IS NOT NULL) f
  GROUP BY chunk
), announced AS (
  SELECT pg_notify('${n.doneChannel}', string_agg(id::text, ','))
  FROM (SELECT id, (row_number() OVER () - 1) / ${NOTIFY_IDS_PER_MESSAGE} AS chunk FROM cancelled) f
  GROUP BY chunk
), cancelled_roots AS (
  SELECT parent_id, parent_seq, status FROM cancelled c WHERE NOT EXISTS (SELECT 1 FROM tree t WHERE t.id = c.parent_id)
), ${wakeParentsCtes(n, 'cancelled_roots')}
SELECT id FROM cancelled
CROSS JOIN (SELECT count(*) FROM told) t CROSS JOIN (SELECT count(*) FROM announced) a CROSS JOIN (SELECT count(*) FROM wake_notify) w`);

/** Cancels these executions and their unfinished descendants; returns the ids cancelled now. */
export async function cancelExecutions(db: Queryable, n: SchemaNames, ids: string[], errorJson: string): Promise<string[]> {
  const all: string[] = [];
  for (;;) {
    const res = await db.query<{ id: string }>({ ...cancelStatement(n), values: [ids, errorJson] });
    if (res.rows.length === 0) return all;
    for (const r of res.rows) all.push(r.id);
  }
}

/** True if the execution was cancelled now; false if it had already finished (or does not exist). */
export async function cancelExecution(db: Queryable, n: SchemaNames, id: string, errorJson: string): Promise<boolean> {
  const cancelled = await cancelExecutions(db, n, [id], errorJson);
  return cancelled.includes(id);
}
