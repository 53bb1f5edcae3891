/**
 * The part of a statement that wakes waiting workflows when children reach a final status:
 * shared by settle (a task or workflow finished) and cancel (a subtree was cancelled), so a
 * child's outcome and its parent's wake-up commit together.
 *
 * Each parent's workflows row is updated (and so locked) whatever it waits for: its `pending`
 * count of awaited children drops by the children that settled here. An activation that is
 * suspending the parent locks the same row before it counts, so either it sees these children
 * settled, or this update runs after its commit on the new row (Postgres re-reads a row
 * updated concurrently) and sees the new wait: no wake-up is lost. The parent is put back in
 * work_queue when the wait may be over: any awaited child for race/any, the last one (or a
 * failure) for all. Children no one awaits change nothing, and a statement that settles no
 * children of workflows does no work here. Parent rows are locked in id order, as the
 * activation commit locks them, so two statements waking the same parents cannot deadlock.
 *
 * One case this statement cannot settle alone: it waited for the lock behind an activation
 * that parked the parent, and its snapshot, taken before that wait, still shows the parent
 * running, without the timer row the park added. Those parents (`wake_missed`: the wake-up was
 * due, no row was woken) are handed back, and the caller runs wakeMissedParents once its
 * transaction has committed: a statement begun after the park, which sees it, and wakes the
 * parent if its wait is over (it also finds, harmlessly, parents that really were running).
 *
 * `from` names an earlier CTE with columns (parent_id, parent_seq, status) of the executions
 * that settled; the caller's final SELECT must read `wake_notify` (count) so its NOTIFY runs,
 * and WAKE_MISSED (the ids of the parents to check again).
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';

/** The final SELECT's column of the parents whose wake-up this statement could not do. */
export const WAKE_MISSED = '(SELECT array_agg(id::text) FROM wake_missed) AS missed_parents';

export function wakeParentsCtes(n: SchemaNames, from: string): string {
  return `wake_parents AS (
  SELECT parent_id AS id, array_agg(parent_seq) AS seqs,
         coalesce(array_agg(parent_seq) FILTER (WHERE status <> 'completed'), '{}') AS failed_seqs
  FROM ${from}
  WHERE parent_seq IS NOT NULL AND status IN ('completed', 'failed', 'cancelled')
  GROUP BY parent_id
), wake_locked AS (
  SELECT w.execution_id AS id FROM ${n.workflows} w
  WHERE w.execution_id IN (SELECT id FROM wake_parents)
  ORDER BY w.execution_id
  FOR UPDATE
), wake_counted AS (
  UPDATE ${n.workflows} w
  SET pending = w.pending - (SELECT count(*) FROM unnest(p.seqs) s WHERE s = ANY (w.wait_children))
  FROM wake_parents p JOIN wake_locked l ON l.id = p.id
  WHERE w.execution_id = p.id
  RETURNING w.execution_id AS id,
            (p.seqs && w.wait_children AND (w.wait_mode = 'any' OR w.pending <= 0 OR p.failed_seqs && w.wait_children)) AS wake
), ${requeueParkedCtes(n, 'wake_', 'wake_counted', 'x.wake')}, wake_missed AS (
  SELECT c.id FROM wake_counted c WHERE c.wake AND NOT EXISTS (SELECT 1 FROM wake_queued q WHERE q.id = c.id)
)`;
}

/**
 * Puts parked workflows back in work_queue: those of `from` (a CTE with an `id` column) for
 * which `when` holds (a condition on `x`, its row) and that are still `scheduled`; their timer
 * row goes, and their queues are notified. CTEs `<prefix>queued`, `ready`, `timer` and
 * `notify`; the caller's final SELECT must read `<prefix>notify` (count) so its NOTIFY runs.
 */
export function requeueParkedCtes(n: SchemaNames, prefix: string, from: string, when: string): string {
  return `${prefix}queued AS (
  UPDATE ${n.executions} e SET status = 'queued'
  FROM ${from} x
  WHERE ${when} AND e.id = x.id AND e.status = 'scheduled'
  RETURNING e.id, e.queue, e.name, e.priority, e.lease_ms
), ${prefix}ready AS (
  INSERT INTO ${n.workQueue} (execution_id, queue, name, priority, lease_ms, payload_bytes)
  SELECT id, queue, name, priority, lease_ms, 0 FROM ${prefix}queued
  ON CONFLICT (execution_id) DO NOTHING
), ${prefix}timer AS (
  DELETE FROM ${n.scheduledQueue} s USING ${prefix}queued q WHERE s.execution_id = q.id
), ${prefix}notify AS (
  SELECT pg_notify('${n.workChannel}', queue) FROM (SELECT DISTINCT queue FROM ${prefix}queued) q
)`;
}

/**
 * What each workflow's current wait already has (its awaited children settled, its signals,
 * its timer), and whether that ends the wait: `checked` and `decided` CTEs over the workflows
 * whose ids `ids` (an SQL array expression) gives.
 */
export function waitCheckCtes(n: SchemaNames, ids: string): string {
  return `checked AS (
  SELECT w.execution_id AS id, w.wait_mode, w.wake_at, cardinality(w.wait_children) AS awaited,
         coalesce(c.settled, 0) AS settled, coalesce(c.failed, false) AS failed,
         -- Most waits name no signal: the lookup runs only for those that do.
         CASE WHEN cardinality(w.wait_signals) = 0 THEN 0
              ELSE (SELECT count(DISTINCT s.name) FROM ${n.workflowSignals} s
                    WHERE s.execution_id = w.execution_id AND s.name = ANY (w.wait_signals))::int END AS signal_names,
         CASE WHEN cardinality(w.wait_signals) = 0 THEN 0
              ELSE (SELECT count(DISTINCT x) FROM unnest(w.wait_signals) x)::int END AS wanted_names,
         w.wake_at <= now() AS due
  FROM ${n.workflows} w
  LEFT JOIN LATERAL (
    SELECT count(*)::int AS settled, bool_or(k.status <> 'completed') AS failed FROM ${n.executions} k
    WHERE k.parent_id = w.execution_id AND k.parent_seq = ANY (w.wait_children) AND k.status IN ('completed', 'failed', 'cancelled')
  ) c ON cardinality(w.wait_children) > 0
  WHERE w.execution_id = ANY (${ids})
), decided AS (
  SELECT id, wake_at, awaited - settled AS pending,
         CASE WHEN wait_mode = 'any' THEN settled > 0 OR signal_names > 0 OR coalesce(due, false)
              ELSE (settled = awaited OR failed) AND signal_names = wanted_names AND coalesce(due, true) END AS ready
  FROM checked
)`;
}

// Locks the rows first (in id order, as every statement locking several workflows does), so an
// activation committing now finishes first; a parked workflow whose wait is over is put back.
const wakeMissedStatement = statement(
  'wf_wake_missed',
  (n) => `
WITH locked AS (
  SELECT w.execution_id AS id FROM ${n.workflows} w WHERE w.execution_id = ANY ($1::bigint[]) ORDER BY w.execution_id FOR UPDATE
), ${waitCheckCtes(n, 'ARRAY(SELECT id FROM locked)')}, ${requeueParkedCtes(n, '', 'decided', 'x.ready')}
SELECT (SELECT count(*) FROM queued)::int AS woken, (SELECT count(*) FROM notify)::int AS notified`,
);

/**
 * Wakes the parents a committed statement handed back in WAKE_MISSED, if their wait is over
 * (see the comment at the top). Returns how many it woke.
 */
export async function wakeMissedParents(db: Queryable, n: SchemaNames, ids: readonly string[] | null | undefined): Promise<number> {
  if (!ids || ids.length === 0) return 0;
  const res = await db.query<{ woken: number }>({ ...wakeMissedStatement(n), values: [ids] });
  return res.rows[0]!.woken;
}
