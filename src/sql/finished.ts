/**
 * The read behind wait(): for many ids at once, the executions that have finished (whole),
 * and which of the others exist. Unfinished executions return their id alone, so a read made
 * while most waited tasks are still queued moves no payloads.
 *
 * Finished rows are read back by the thousand, so their cost per row matters: they come as
 * arrays (no object per row to build and throw away), and their timestamps in binary form
 * (microseconds since 2000-01-01, as hex, the four in one column), which costs Postgres a third
 * of what its text form does and the client less to turn into a Date. Payloads and results
 * come as JSON text. Both are decoded only when the caller looks (see finished-execution.ts);
 * the values are the same as `get` returns.
 *
 * A finished execution has no work_queue row (settle and cancel delete it in the statement
 * that sets the final status), so its own columns are what `get` returns for it.
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';
import type { Execution } from '../types.js';
import { finishedExecution, NULL_TIME, type FinishedRow } from './finished-execution.js';

export { fromBinaryTime } from './finished-execution.js';

/** A time as its TIME_SLOT characters (see finished-execution.ts). */
const timeSlot = (column: string) => `coalesce(encode(timestamptz_send(${column}), 'hex'), '${NULL_TIME}')`;

/**
 * `id = ANY(...)` lets Postgres fetch the rows in heap order (a bitmap scan), several times
 * cheaper per row than a join probing the index once per id. The unfinished ids come from a
 * second scan, as one comma-separated row (NULL if none): most ids of a read made while their
 * tasks still run are unfinished, and a row each cost the client more than the rest of the read. Both scans see one
 * snapshot. Ids are passed as one array literal (text), far cheaper to build than a bound array.
 */
const FINAL = `e.status IN ('completed', 'failed', 'cancelled')`;
const finishedStatement = statement(
  'finished',
  (n) => `
SELECT e.id::text, e.kind, e.name, e.queue, e.status, e.payload::text, e.result::text, e.error, e.priority, e.attempts,
       e.max_attempts, e.parent_id::text, e.group_key,
       ${timeSlot('e.created_at')} || ${timeSlot('e.run_at')} || ${timeSlot('e.started_at')} || ${timeSlot('e.finished_at')},
       e.attempt_log, e.progress
FROM ${n.executions} e
WHERE e.id = ANY($1::bigint[]) AND ${FINAL}
UNION ALL
SELECT string_agg(e.id::text, ','), ${Array(15).fill('NULL').join(', ')}
FROM ${n.executions} e
WHERE e.id = ANY($1::bigint[]) AND NOT ${FINAL}`,
);

/** Each finished id with its execution, each unfinished one with null; ids that do not exist are absent. */
export type FinishedRead = Map<string, Execution | null>;

/** The unfinished ones: their ids, comma-separated (null if none), then nulls. */
type UnfinishedRow = [ids: string | null, kind: null, ...rest: null[]];

/** `ids` must be distinct positive integers (as strings). */
export async function readFinished(db: Queryable, n: SchemaNames, ids: readonly string[]): Promise<FinishedRead> {
  const res = await db.query<FinishedRow | UnfinishedRow>({ ...finishedStatement(n), values: [`{${ids.join(',')}}`], rowMode: 'array' });
  const found: FinishedRead = new Map();
  for (const r of res.rows) {
    const id = r[0];
    if (r[1] === null) {
      if (id !== null) for (const unfinished of id.split(',')) found.set(unfinished, null);
      continue;
    }
    if (id === null) continue;
    found.set(id, finishedExecution(r as FinishedRow));
  }
  return found;
}
