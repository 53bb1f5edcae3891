/**
 * Cancels executions from any process, in one statement: by ids or by a filter. A queued or
 * scheduled one is removed from its queue; a running one's worker is told on the cancel
 * channel (by lease token: a retry of it is a new claim, not cancelled) so its handler's
 * signal aborts. Each is `cancelled` at once (and entered in
 * dead_letters, so retry can run it again), and a running worker's later outcome is fenced
 * out (its work_queue row is gone) and a group-concurrency slot it held is given back. A running execution keeps its attempt count and start
 * time, and the interrupted attempt is appended to its attempt log.
 *
 * Lock order matches claim and settle (work_queue before executions): the work_queue rows are
 * locked first, in id order, and the executions UPDATE waits on the queue DELETEs through its
 * join, so cancel cannot deadlock with them.
 */
import type { Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';
import { appendAttempt, claimEntry } from './attempt-log.js';
import { freeSlots } from './groups.js';
import { Params, selectIds, skippedIds, type Selection } from './select.js';
import type { ExecutionStatus } from '../types.js';

/** Chunks of at most 400 ids keep one NOTIFY payload under Postgres' 8,000-byte limit. */
const NOTIFY_IDS_PER_MESSAGE = 400;

export interface Outcomes {
  /** Executions acted on, in id order. */
  done: string[];
  /** Ids asked for (by id) that were not acted on, with their status (null: no such execution). */
  skipped: { id: string; status: ExecutionStatus | null }[];
}

/** One pg_notify per chunk of ids from `rows` (a CTE with column `col`). */
export function notifyIds(channel: string, rows: string, col: string, where = 'true'): string {
  return `SELECT pg_notify('${channel}', string_agg(${col}::text, ','))
  FROM (SELECT ${col}, (row_number() OVER () - 1) / ${NOTIFY_IDS_PER_MESSAGE} AS chunk FROM ${rows} WHERE ${where}) f
  GROUP BY chunk`;
}

export async function cancelExecutions(db: Queryable, n: SchemaNames, sel: Selection, errorJson: string): Promise<Outcomes> {
  const p = new Params();
  // Only unfinished executions can be cancelled: select among those.
  const statuses = sel.statuses ?? ['scheduled', 'queued', 'running'];
  const target = selectIds(n, { ...sel, statuses }, p);
  const error = p.add(errorJson, 'jsonb');
  const text = `
WITH target AS (${target}
), locked AS (
  SELECT w.execution_id FROM ${n.workQueue} w WHERE w.execution_id IN (SELECT id FROM target)
  ORDER BY w.execution_id
  FOR UPDATE
), unqueued AS (
  DELETE FROM ${n.workQueue} w USING locked l WHERE w.execution_id = l.execution_id
  RETURNING w.execution_id, w.claimed_by, w.claimed_at, w.attempts, w.lease_token, w.queue, w.group_key, w.holds_group_slot
), ${freeSlots(n, 'unqueued')}, unscheduled AS (
  DELETE FROM ${n.scheduledQueue} s USING target t WHERE s.execution_id = t.id
  RETURNING s.execution_id
), cancelled AS (
  UPDATE ${n.executions} e
  SET status = 'cancelled', finished_at = now(), error = ${error},
      attempts = coalesce(u.attempts, e.attempts),
      started_at = CASE WHEN u.claimed_by IS NOT NULL THEN u.claimed_at ELSE e.started_at END,
      attempt_log = CASE WHEN u.claimed_by IS NOT NULL THEN ${appendAttempt('e.attempt_log', claimEntry('u', "'cancelled'", error))}
                         ELSE e.attempt_log END
  FROM target t LEFT JOIN unqueued u ON u.execution_id = t.id
  WHERE e.id = t.id AND e.status IN ('scheduled', 'queued')
    AND (SELECT count(*) FROM unscheduled) >= 0
  RETURNING e.id, e.queue, e.name, e.created_at, u.claimed_by, u.lease_token
), dead AS (
  INSERT INTO ${n.deadLetters} (execution_id, queue, name, status, created_at)
  SELECT id, queue, name, 'cancelled', created_at FROM cancelled
  ON CONFLICT (execution_id) DO UPDATE SET status = EXCLUDED.status
), told AS (
  ${notifyIds(n.cancelChannel, 'cancelled', 'lease_token', 'claimed_by IS NOT NULL')}
), announced AS (
  ${notifyIds(n.doneChannel, 'cancelled', 'id')}
)
SELECT id::text, true AS done, NULL AS status FROM cancelled
  CROSS JOIN (SELECT count(*) FROM told) t CROSS JOIN (SELECT count(*) FROM announced) a
${sel.ids ? `UNION ALL ${skippedIds(n, sel.ids, p, 'cancelled')}` : ''}`;
  return outcomes(await db.query({ text, values: p.values }));
}

/** Splits the rows of an admin statement into done and skipped. */
export function outcomes(res: { rows: { id: string; done: boolean; status: ExecutionStatus | null }[] }): Outcomes {
  const done: string[] = [];
  const skipped: Outcomes['skipped'] = [];
  for (const r of res.rows) {
    if (r.done) done.push(r.id);
    else skipped.push({ id: r.id, status: r.status });
  }
  done.sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
  return { done, skipped };
}
