/** Reads executions by id (the public `get`), and maps rows to Executions. */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';
import type { AttemptRecord, Execution, ExecutionStatus, TaskErrorInfo } from '../types.js';

/**
 * The public columns of an execution `e` with its work_queue row `w` (LEFT JOINed): "running"
 * is a queued execution whose work_queue row is claimed (see migrations/001_init.sql), and a
 * running attempt's count and start live on that row until it settles.
 */
export const EXECUTION_COLUMNS = `e.id, e.kind, e.name, e.queue,
       CASE WHEN e.status = 'queued' AND w.claimed_until IS NOT NULL THEN 'running' ELSE e.status END AS status,
       e.payload, e.result, e.error, e.priority, coalesce(w.attempts, e.attempts) AS attempts, e.max_attempts,
       e.parent_id, e.group_key, e.created_at, e.run_at, coalesce(w.claimed_at, e.started_at) AS started_at, e.finished_at, e.attempt_log, e.progress`;

export interface ExecutionRow {
  id: string;
  kind: 'task' | 'workflow';
  name: string;
  queue: string;
  status: ExecutionStatus;
  payload: unknown;
  result: unknown;
  error: TaskErrorInfo | null;
  priority: number;
  attempts: number;
  max_attempts: number;
  parent_id: string | null;
  group_key: string | null;
  created_at: Date;
  run_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  attempt_log: StoredAttempt[] | null;
  progress: unknown;
}

/** An attempt log entry as stored (jsonb: times are ISO text). */
export interface StoredAttempt {
  attempt: number;
  startedAt: string | null;
  finishedAt: string;
  workerId: string | null;
  outcome: AttemptRecord['outcome'];
  error: TaskErrorInfo | null;
}

export function toExecution(r: ExecutionRow): Execution {
  return {
    id: r.id,
    kind: r.kind,
    name: r.name,
    queue: r.queue,
    status: r.status,
    payload: r.payload,
    result: r.result,
    error: r.error,
    priority: r.priority,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    parentId: r.parent_id,
    group: r.group_key,
    createdAt: r.created_at,
    runAt: r.run_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    attemptLog: toAttemptLog(r.attempt_log),
    progress: r.progress,
  };
}

/** The attempt log as stored (jsonb, null for none) as the public records. */
export function toAttemptLog(log: StoredAttempt[] | null): AttemptRecord[] {
  return (log ?? []).map((a) => ({
    attempt: a.attempt,
    startedAt: a.startedAt === null ? null : new Date(a.startedAt),
    finishedAt: new Date(a.finishedAt),
    workerId: a.workerId,
    outcome: a.outcome,
    error: a.error,
  }));
}

const getStatement = statement(
  'get',
  (n) => `
SELECT ${EXECUTION_COLUMNS}
FROM ${n.executions} e
LEFT JOIN ${n.workQueue} w ON w.execution_id = e.id
WHERE e.id = ANY($1::bigint[])`,
);

export async function getExecutions(db: Queryable, n: SchemaNames, ids: string[]): Promise<Map<string, Execution>> {
  const res = await db.query<ExecutionRow>({ ...getStatement(n), values: [ids] });
  return new Map(res.rows.map((r) => [r.id, toExecution(r)]));
}
