/**
 * One page of workflow executions, newest first, with what each waits for. It walks the
 * workflows table by its primary key (keyset on the execution id), so a page costs the same
 * however many tasks the history holds.
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';
import type { Execution } from '../types.js';
import { EXECUTION_COLUMNS, toExecution, type ExecutionRow } from './get.js';

export interface WorkflowSummary {
  execution: Execution;
  /** What its current await waits for (empty once it finished). */
  waitingOn: { mode: 'all' | 'any'; children: number[]; signals: string[]; wakeAt: Date | null; pending: number };
}

const listStatement = statement(
  'wf_list',
  (n) => `
SELECT ${EXECUTION_COLUMNS}, wf.wait_mode, wf.wait_children, wf.wait_signals, wf.wake_at, wf.pending
FROM ${n.workflows} wf
JOIN ${n.executions} e ON e.id = wf.execution_id
LEFT JOIN ${n.workQueue} w ON w.execution_id = e.id
WHERE $1::bigint IS NULL OR wf.execution_id < $1::bigint
ORDER BY wf.execution_id DESC
LIMIT $2`,
);

interface Row extends ExecutionRow {
  wait_mode: 'all' | 'any';
  wait_children: number[];
  wait_signals: string[];
  wake_at: Date | null;
  pending: number;
}

/** At most `limit` workflows with ids below `beforeId` (all, when null), newest first. */
export async function listWorkflows(db: Queryable, n: SchemaNames, beforeId: string | null, limit: number): Promise<WorkflowSummary[]> {
  const res = await db.query<Row>({ ...listStatement(n), values: [beforeId, limit] });
  return res.rows.map((r) => ({
    execution: toExecution(r),
    waitingOn: { mode: r.wait_mode, children: r.wait_children, signals: r.wait_signals, wakeAt: r.wake_at, pending: r.pending },
  }));
}
