/**
 * Deletes settled history older than the retention, a small batch at a time, so the
 * executions table stays bounded without long-running deletes.
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';

const pruneStatement = statement('prune', (n) => `
WITH old AS (
  SELECT id FROM ${n.executions}
  WHERE finished_at < now() - $1 * interval '1 millisecond'
    AND status IN ('completed', 'failed', 'cancelled')
  LIMIT $2
  FOR UPDATE SKIP LOCKED
)
DELETE FROM ${n.executions} e USING old WHERE e.id = old.id`);

export async function pruneHistory(db: Queryable, n: SchemaNames, retentionMs: number, limit: number): Promise<number> {
  const res = await db.query({ ...pruneStatement(n), values: [retentionMs, limit] });
  return res.rowCount ?? 0;
}
