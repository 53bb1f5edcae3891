/**
 * Per-queue figures for `rhythm status`, in one statement. Live figures come from the small
 * hot tables (work_queue: ready and claimed rows; scheduled_queue joined to executions for
 * its queue), recent outcomes from the executions history through its finished_at index, so
 * the cost does not grow with the history kept.
 *
 * oldest_waiting_ms: how long the oldest ready task of the queue has been due (now - run_at:
 * its enqueue time, or the time its delay or retry backoff ended).
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';

export interface QueueStatus {
  queue: string;
  /** Ready to run, waiting for a worker. */
  queued: number;
  /** Waiting for a time: a delay or a retry backoff. */
  scheduled: number;
  /** Claimed by a worker. */
  running: number;
  /** Failed for good within the window. */
  failed: number;
  /** Completed within the window. */
  completed: number;
  /** Age of the oldest ready task in milliseconds; null when none is ready. */
  oldestWaitingMs: number | null;
}

const statusStatement = statement('status', (n) => `
WITH work AS (
  SELECT queue,
         count(*) FILTER (WHERE claimed_until IS NULL) AS queued,
         count(*) FILTER (WHERE claimed_until IS NOT NULL) AS running
  FROM ${n.workQueue} GROUP BY queue
), waiting AS (
  SELECT w.queue, min(e.run_at) AS oldest
  FROM ${n.workQueue} w JOIN ${n.executions} e ON e.id = w.execution_id
  WHERE w.claimed_until IS NULL
  GROUP BY w.queue
), sched AS (
  SELECT e.queue, count(*) AS scheduled
  FROM ${n.scheduledQueue} s JOIN ${n.executions} e ON e.id = s.execution_id
  GROUP BY e.queue
), recent AS (
  SELECT queue,
         count(*) FILTER (WHERE status = 'failed') AS failed,
         count(*) FILTER (WHERE status = 'completed') AS completed
  FROM ${n.executions}
  WHERE finished_at > now() - $1 * interval '1 millisecond'
  GROUP BY queue
), queues AS (
  SELECT queue FROM work UNION SELECT queue FROM sched UNION SELECT queue FROM recent
)
SELECT q.queue,
       coalesce(work.queued, 0)::int AS queued,
       coalesce(sched.scheduled, 0)::int AS scheduled,
       coalesce(work.running, 0)::int AS running,
       coalesce(recent.failed, 0)::int AS failed,
       coalesce(recent.completed, 0)::int AS completed,
       CASE WHEN waiting.oldest IS NOT NULL
            THEN greatest(0, floor(extract(epoch FROM now() - waiting.oldest) * 1000))::bigint END AS oldest_waiting_ms
FROM queues q
LEFT JOIN work ON work.queue = q.queue
LEFT JOIN waiting ON waiting.queue = q.queue
LEFT JOIN sched ON sched.queue = q.queue
LEFT JOIN recent ON recent.queue = q.queue
ORDER BY q.queue`);

/** One row per queue with anything queued, scheduled or running, or finished within `windowMs`. */
export async function queueStatus(db: Queryable, n: SchemaNames, windowMs: number): Promise<QueueStatus[]> {
  const res = await db.query({ ...statusStatement(n), values: [windowMs] });
  return res.rows.map((r) => ({
    queue: r.queue,
    queued: r.queued,
    scheduled: r.scheduled,
    running: r.running,
    failed: r.failed,
    completed: r.completed,
    oldestWaitingMs: r.oldest_waiting_ms === null ? null : Number(r.oldest_waiting_ms),
  }));
}

const tablesStatement = statement('status_tables', (n) => `
SELECT to_regclass('${n.executions}') IS NOT NULL
   AND to_regclass('${n.workQueue}') IS NOT NULL
   AND to_regclass('${n.scheduledQueue}') IS NOT NULL AS ready`);

/** False until the schema's migrations created the queue tables. */
export async function schemaReady(db: Queryable, n: SchemaNames): Promise<boolean> {
  const res = await db.query<{ ready: boolean }>(tablesStatement(n));
  return res.rows[0]!.ready;
}
