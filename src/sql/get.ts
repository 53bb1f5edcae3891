/** Reads executions by id (the public `get`, and `wait` once notified). */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';
import type { Execution } from '../types.js';

/** "running" is a queued execution whose work_queue row is claimed; see migrations/001_init.sql. */
const getStatement = statement('get', (n) => `
SELECT e.id, e.kind, e.name, e.queue,
       CASE WHEN e.status = 'queued' AND w.claimed_until IS NOT NULL THEN 'running' ELSE e.status END AS status,
       e.payload, e.result, e.error, e.priority, coalesce(w.attempts, e.attempts) AS attempts, e.max_attempts,
       e.parent_id, e.created_at, e.run_at, coalesce(w.claimed_at, e.started_at) AS started_at, e.finished_at, e.progress
FROM ${n.executions} e
LEFT JOIN ${n.workQueue} w ON w.execution_id = e.id
WHERE e.id = ANY($1::bigint[])`);

export async function getExecutions(db: Queryable, n: SchemaNames, ids: string[]): Promise<Map<string, Execution>> {
  const res = await db.query({ ...getStatement(n), values: [ids] });
  return new Map(
    res.rows.map((r) => [
      r.id,
      {
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
        createdAt: r.created_at,
        runAt: r.run_at,
        startedAt: r.started_at,
        finishedAt: r.finished_at,
        progress: r.progress,
      },
    ]),
  );
}
