/** Reads executions by id (the public `get`, and `wait` once notified). */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';
import type { Execution } from '../types.js';

const getStatement = statement('get', (n) => `
SELECT id, kind, name, queue, status, payload, result, error, priority, attempts, max_attempts,
       parent_id, created_at, run_at, started_at, finished_at
FROM ${n.executions} WHERE id = ANY($1::bigint[])`);

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
      },
    ]),
  );
}
