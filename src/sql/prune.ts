/**
 * Deletes settled history older than its retention, a small batch at a time, so the
 * executions table stays bounded without long-running deletes. Failed executions have a
 * retention of their own (longer by default): they are the dead letters an operator lists,
 * fixes and retries, so they must outlive the completed ones. A workflow's children stay as
 * long as the workflow is unfinished or failed: retrying a failed workflow reads the outcomes
 * of the children its last await lists.
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';

// $1: retention of completed and cancelled executions, $3: of failed ones, in ms; NULL keeps
// them. The first condition (the smaller retention) is what the BRIN index on finished_at serves.
const pruneStatement = statement(
  'prune',
  (n) => `
WITH old AS (
  SELECT e.id FROM ${n.executions} e
  WHERE e.finished_at < now() - least(coalesce($1::bigint, $3::bigint), coalesce($3::bigint, $1::bigint)) * interval '1 millisecond'
    AND ((e.status IN ('completed', 'cancelled') AND e.finished_at < now() - $1::bigint * interval '1 millisecond')
      OR (e.status = 'failed' AND e.finished_at < now() - $3::bigint * interval '1 millisecond'))
    AND (e.parent_id IS NULL OR NOT EXISTS (
      SELECT 1 FROM ${n.executions} p WHERE p.id = e.parent_id AND p.status NOT IN ('completed', 'cancelled')))
  LIMIT $2
  FOR UPDATE OF e SKIP LOCKED
)
DELETE FROM ${n.executions} e USING old WHERE e.id = old.id`,
);

/** Retentions in ms; 0 keeps those executions forever. */
export interface Retention {
  /** Completed and cancelled executions. */
  retentionMs: number;
  /** Failed executions. */
  failedRetentionMs: number;
}

export async function pruneHistory(db: Queryable, n: SchemaNames, retention: Retention, limit: number): Promise<number> {
  const keep = (ms: number) => (ms > 0 ? ms : null);
  if (retention.retentionMs <= 0 && retention.failedRetentionMs <= 0) return 0;
  const res = await db.query({ ...pruneStatement(n), values: [keep(retention.retentionMs), limit, keep(retention.failedRetentionMs)] });
  return res.rowCount ?? 0;
}
