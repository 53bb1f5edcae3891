/**
 * The read behind wait(): for many ids at once, the executions that have finished (whole)
 * and the ids that do not exist. Unfinished executions return no row at all, so a read made
 * while most waited tasks are still queued costs the client nothing per task.
 *
 * A finished execution has no work_queue row (settle and cancel delete it in the statement
 * that sets the final status), so its own columns are what `get` returns for it.
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';
import type { Execution } from '../types.js';
import { toExecution } from './get.js';

/** Takes distinct ids as one array literal (text), which costs far less to build than a bound array. */
const finishedStatement = statement('finished', (n) => `
SELECT i.id::text AS id, e.kind, e.name, e.queue, e.status, e.payload, e.result, e.error, e.priority, e.attempts,
       e.max_attempts, e.parent_id, e.created_at, e.run_at, e.started_at, e.finished_at
FROM unnest($1::bigint[]) AS i(id)
LEFT JOIN ${n.executions} e ON e.id = i.id
WHERE e.id IS NULL OR e.status IN ('completed', 'failed', 'cancelled')`);

/** Each finished id with its execution, each id that does not exist with null; unfinished ids are absent. */
export type FinishedRead = Map<string, Execution | null>;

/** `ids` must be distinct positive integers (as strings). */
export async function readFinished(db: Queryable, n: SchemaNames, ids: readonly string[]): Promise<FinishedRead> {
  const res = await db.query({ ...finishedStatement(n), values: [`{${ids.join(',')}}`] });
  const found: FinishedRead = new Map();
  for (const r of res.rows) found.set(r.id, r.kind === null ? null : toExecution(r));
  return found;
}
