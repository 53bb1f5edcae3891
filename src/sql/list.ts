/**
 * One page of executions, newest first, by keyset on id: each page continues below the last
 * id of the previous one, so pages stay stable while new executions are inserted, and a page
 * costs the same however deep it is.
 */
import type { Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';
import type { Execution } from '../types.js';
import { EXECUTION_COLUMNS, toExecution, type ExecutionRow } from './get.js';
import { Params, selectIds, type Selection } from './select.js';

/**
 * The statement depends on which filters are given, so it is built per call (unnamed: one
 * generic plan for every filter combination could not read the right table or index). The
 * page's ids are found first, then only those rows are read whole.
 */
export async function listExecutions(db: Queryable, n: SchemaNames, sel: Selection, limit: number): Promise<Execution[]> {
  const p = new Params();
  const text = `
WITH page AS MATERIALIZED (${selectIds(n, sel, p, limit)})
SELECT ${EXECUTION_COLUMNS}
FROM page JOIN ${n.executions} e ON e.id = page.id
LEFT JOIN ${n.workQueue} w ON w.execution_id = e.id
ORDER BY e.id DESC`;
  const res = await db.query<ExecutionRow>({ text, values: p.values });
  return res.rows.map(toExecution);
}
