/**
 * Starts a workflow: its executions row (kind 'workflow'), its empty workflows row and its
 * work_queue row, in one statement; the first activation pins the source version. Nothing is
 * inserted if no worker has registered the name (and the caller did not vouch for it), so a
 * misspelt name is an error at the call instead of a workflow no worker will ever run.
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';

/** A failed activation (its worker died mid-step) is retried this many times in a row. */
export const WORKFLOW_MAX_ATTEMPTS = 10;

const startStatement = statement(
  'wf_start',
  (n) => `
WITH inserted AS (
  INSERT INTO ${n.executions} (kind, name, queue, status, payload, payload_bytes, priority, max_attempts)
  SELECT 'workflow', $1, $2, 'queued', $3::jsonb, pg_column_size($3::jsonb), $4, ${WORKFLOW_MAX_ATTEMPTS}
  WHERE $5 OR EXISTS (SELECT 1 FROM ${n.workflowSources} WHERE name = $1)
  RETURNING id, queue, name, priority
), state AS (
  INSERT INTO ${n.workflows} (execution_id) SELECT id FROM inserted
), ready AS (
  INSERT INTO ${n.workQueue} (execution_id, queue, name, priority, payload_bytes)
  SELECT id, queue, name, priority, 0 FROM inserted
), wake AS (
  SELECT pg_notify('${n.workChannel}', queue) FROM inserted
)
SELECT id FROM inserted CROSS JOIN (SELECT count(*) FROM wake) w`,
);

/** Returns the new execution id, or null if the name is registered nowhere. */
export async function startWorkflowRow(
  db: Queryable,
  n: SchemaNames,
  row: { name: string; queue: string; inputsJson: string; priority: number; knownHere: boolean },
): Promise<string | null> {
  const res = await db.query<{ id: string }>({
    ...startStatement(n),
    values: [row.name, row.queue, row.inputsJson, row.priority, row.knownHere],
  });
  return res.rows[0]?.id ?? null;
}
