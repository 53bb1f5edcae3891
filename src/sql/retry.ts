/**
 * Runs failed or cancelled executions again, in one statement: each becomes queued now, as a
 * new attempt with at least `extraAttempts` more allowed (max_attempts is raised if needed, the
 * attempt count goes on), and wakes its queue's dispatchers. Its attempt log is kept; a row
 * that failed before the log existed gets its last error appended first, so no history is lost.
 *
 * The candidates come from dead_letters, which holds exactly the failed and cancelled
 * executions. A work_queue row may survive a cancel that raced a promotion (its execution is
 * cancelled, so no claim returns it): it is reset instead of conflicting. A group slot such a
 * row held is left to the internal worker's recount, which corrects the group's count.
 *
 * An execution with a uniqueKey is revived only if no unfinished execution holds that key, and
 * of several with one key only the newest: reviving more would break the one-unfinished-per-key
 * rule (the unique index would refuse the whole statement). The others are skipped as they are.
 */
import type { Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';
import { appendAttempt } from './attempt-log.js';
import { Params, selectIds, skippedIds, type Selection } from './select.js';
import { outcomes, type OutcomeRow, type Outcomes } from './cancel.js';

/** The last error of a row failed before attempt logs existed, as a log entry. */
const UNLOGGED_FAILURE = appendAttempt('e.attempt_log', {
  attempt: 'e.attempts',
  startedAt: 'e.started_at',
  finishedAt: 'e.finished_at',
  workerId: 'NULL::text',
  outcome: "'failed'",
  error: 'e.error',
});

export async function retryExecutions(db: Queryable, n: SchemaNames, sel: Selection, extraAttempts: number): Promise<Outcomes> {
  const p = new Params();
  const target = selectIds(n, { ...sel, statuses: sel.statuses ?? ['failed', 'cancelled'] }, p);
  const text = `
WITH target AS (${target}
), revived AS (
  UPDATE ${n.executions} e
  SET status = 'queued',
      max_attempts = greatest(e.max_attempts, e.attempts + ${p.add(extraAttempts, 'int')}),
      run_at = now(), started_at = NULL, finished_at = NULL, result = NULL, error = NULL,
      attempt_log = CASE WHEN e.status = 'failed' AND e.error IS NOT NULL AND e.attempts > 0
                          AND coalesce((e.attempt_log -> -1 ->> 'attempt')::int, 0) <> e.attempts
                         THEN ${UNLOGGED_FAILURE} ELSE e.attempt_log END
  FROM target t
  WHERE e.id = t.id AND e.status IN ('failed', 'cancelled')
    AND (e.unique_key IS NULL OR (
      NOT EXISTS (SELECT 1 FROM ${n.executions} h WHERE h.unfinished_key = e.unique_key)
      AND e.id = (SELECT max(k.id) FROM ${n.executions} k JOIN target kt ON kt.id = k.id
                  WHERE k.unique_key = e.unique_key AND k.status IN ('failed', 'cancelled'))))
  RETURNING e.id, e.queue, e.name, e.priority, e.lease_ms, e.attempts, e.payload_bytes, e.group_key
), revoked AS (
  DELETE FROM ${n.deadLetters} d USING revived r WHERE d.execution_id = r.id
), ready AS (
  INSERT INTO ${n.workQueue} (execution_id, queue, name, priority, lease_ms, attempts, payload_bytes, group_key)
  SELECT id, queue, name, priority, lease_ms, attempts, payload_bytes, group_key FROM revived
  ON CONFLICT (execution_id) DO UPDATE
  SET queue = EXCLUDED.queue, name = EXCLUDED.name, priority = EXCLUDED.priority, lease_ms = EXCLUDED.lease_ms,
      attempts = EXCLUDED.attempts, payload_bytes = EXCLUDED.payload_bytes, group_key = EXCLUDED.group_key,
      lease_token = NULL, claimed_by = NULL, claimed_at = NULL, claimed_until = NULL, holds_group_slot = false
), wake AS (
  SELECT pg_notify('${n.workChannel}', queue) FROM (SELECT DISTINCT queue FROM revived) q
)
SELECT id::text, true AS done, NULL AS status FROM revived CROSS JOIN (SELECT count(*) FROM wake) w
${sel.ids ? `UNION ALL ${skippedIds(n, sel.ids, p, 'revived')}` : ''}`;
  return outcomes(await db.query<OutcomeRow>({ text, values: p.values }));
}
