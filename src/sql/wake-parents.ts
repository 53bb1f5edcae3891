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
 * `from` names an earlier CTE with columns (parent_id, parent_seq, status) of the executions
 * that settled; the caller's final SELECT must read `wake_notify` (count) so its NOTIFY runs.
 */
import type { SchemaNames } from '../db/schema.js';

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
), wake_queued AS (
  UPDATE ${n.executions} e SET status = 'queued'
  FROM wake_counted c
  WHERE c.wake AND e.id = c.id AND e.status = 'scheduled'
  RETURNING e.id, e.queue, e.name, e.priority, e.lease_ms
), wake_ready AS (
  INSERT INTO ${n.workQueue} (execution_id, queue, name, priority, lease_ms, payload_bytes)
  SELECT id, queue, name, priority, lease_ms, 0 FROM wake_queued
  ON CONFLICT (execution_id) DO NOTHING
), wake_timer AS (
  DELETE FROM ${n.scheduledQueue} s USING wake_queued q WHERE s.execution_id = q.id
), wake_notify AS (
  SELECT pg_notify('${n.workChannel}', queue) FROM (SELECT DISTINCT queue FROM wake_queued) q
)`;
}
