/**
 * The read behind wait(): for many ids at once, which executions exist and, for those that
 * have finished, the whole execution. Unfinished rows come back as id and status only, so a
 * read made while most waited tasks are still queued moves no payloads.
 *
 * A finished execution has no work_queue row (settle and cancel delete it in the statement
 * that sets the final status), so its columns alone are what `get` returns for it.
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';
import type { Execution } from '../types.js';
import { toExecution } from './get.js';

const finishedStatement = statement('finished', (n) => `
SELECT e.id, e.status, f.*
FROM ${n.executions} e
LEFT JOIN LATERAL (
  SELECT e.kind, e.name, e.queue, e.payload, e.result, e.error, e.priority, e.attempts, e.max_attempts,
         e.parent_id, e.created_at, e.run_at, e.started_at, e.finished_at
  WHERE e.status IN ('completed', 'failed', 'cancelled')
) f ON true
WHERE e.id = ANY($1::bigint[])`);

/** What a read found: each existing id, with its execution if it has finished (else null). */
export type FinishedRead = Map<string, Execution | null>;

export async function readFinished(db: Queryable, n: SchemaNames, ids: string[]): Promise<FinishedRead> {
  const res = await db.query({ ...finishedStatement(n), values: [ids] });
  const found: FinishedRead = new Map();
  for (const r of res.rows) found.set(r.id, r.kind === null ? null : toExecution(r));
  return found;
}
