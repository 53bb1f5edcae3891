/**
 * Figures per queue and task name, in one statement (the public `status()`, and `rhythm
 * status`). Live figures come from the small hot tables (work_queue: ready and claimed rows;
 * scheduled_queue joined to executions for its queue and name), outcomes from the executions
 * history through its finished_at index, so the cost does not grow with the history kept.
 *
 * oldest waiting: the earliest due time (run_at: its enqueue time, or the time its delay or
 * retry backoff ended) among the ready executions of the queue and task.
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';

/** Counts of one queue, or of one task name in a queue. */
export interface StatusCounts {
  /** Waiting for a time: a delay or a retry backoff. */
  scheduled: number;
  /** Ready to run, waiting for a worker. */
  queued: number;
  /** Claimed by a worker. */
  running: number;
  /** Completed within the window. */
  completed: number;
  /** Failed for good within the window. */
  failed: number;
  /** Cancelled within the window. */
  cancelled: number;
  /** Due time of the oldest ready execution; null when none is ready. */
  oldestWaitingAt: Date | null;
  /** How long that one has been waiting, in milliseconds (on the database's clock). */
  oldestWaitingMs: number | null;
}

export interface TaskStatus extends StatusCounts {
  name: string;
}

export interface QueueReport extends StatusCounts {
  queue: string;
  /** The same figures per task name in this queue, by name. */
  tasks: TaskStatus[];
}

const statusStatement = statement(
  'status_by_task',
  (n) => `
WITH work AS (
  SELECT queue, name,
         count(*) FILTER (WHERE claimed_until IS NULL) AS queued,
         count(*) FILTER (WHERE claimed_until IS NOT NULL) AS running
  FROM ${n.workQueue} GROUP BY queue, name
), waiting AS (
  SELECT w.queue, w.name, min(e.run_at) AS oldest
  FROM ${n.workQueue} w JOIN ${n.executions} e ON e.id = w.execution_id
  WHERE w.claimed_until IS NULL
  GROUP BY w.queue, w.name
), sched AS (
  SELECT e.queue, e.name, count(*) AS scheduled
  FROM ${n.scheduledQueue} s JOIN ${n.executions} e ON e.id = s.execution_id
  GROUP BY e.queue, e.name
), recent AS (
  SELECT queue, name,
         count(*) FILTER (WHERE status = 'completed') AS completed,
         count(*) FILTER (WHERE status = 'failed') AS failed,
         count(*) FILTER (WHERE status = 'cancelled') AS cancelled
  FROM ${n.executions}
  WHERE finished_at > now() - $1 * interval '1 millisecond'
  GROUP BY queue, name
), keys AS (
  SELECT queue, name FROM work UNION SELECT queue, name FROM sched UNION SELECT queue, name FROM recent
)
SELECT k.queue, k.name,
       coalesce(sched.scheduled, 0)::int AS scheduled,
       coalesce(work.queued, 0)::int AS queued,
       coalesce(work.running, 0)::int AS running,
       coalesce(recent.completed, 0)::int AS completed,
       coalesce(recent.failed, 0)::int AS failed,
       coalesce(recent.cancelled, 0)::int AS cancelled,
       waiting.oldest AS oldest_waiting_at,
       CASE WHEN waiting.oldest IS NOT NULL
            THEN greatest(0, floor(extract(epoch FROM now() - waiting.oldest) * 1000))::bigint END AS oldest_waiting_ms
FROM keys k
LEFT JOIN work ON (work.queue, work.name) = (k.queue, k.name)
LEFT JOIN waiting ON (waiting.queue, waiting.name) = (k.queue, k.name)
LEFT JOIN sched ON (sched.queue, sched.name) = (k.queue, k.name)
LEFT JOIN recent ON (recent.queue, recent.name) = (k.queue, k.name)
ORDER BY k.queue, k.name`,
);

interface StatusRow {
  queue: string;
  name: string;
  scheduled: number;
  queued: number;
  running: number;
  completed: number;
  failed: number;
  cancelled: number;
  oldest_waiting_at: Date | null;
  oldest_waiting_ms: string | null;
}

/**
 * One report per queue with anything scheduled, queued or running, or finished within
 * `windowMs`, each with its task names; queues and names in order.
 */
export async function statusByQueue(db: Queryable, n: SchemaNames, windowMs: number): Promise<QueueReport[]> {
  const res = await db.query<StatusRow>({ ...statusStatement(n), values: [windowMs] });
  const queues: QueueReport[] = [];
  for (const r of res.rows) {
    const task: TaskStatus = {
      name: r.name,
      scheduled: r.scheduled,
      queued: r.queued,
      running: r.running,
      completed: r.completed,
      failed: r.failed,
      cancelled: r.cancelled,
      oldestWaitingAt: r.oldest_waiting_at,
      oldestWaitingMs: r.oldest_waiting_ms === null ? null : Number(r.oldest_waiting_ms),
    };
    let q = queues.at(-1);
    if (q?.queue !== r.queue) {
      q = {
        queue: r.queue,
        scheduled: 0,
        queued: 0,
        running: 0,
        completed: 0,
        failed: 0,
        cancelled: 0,
        oldestWaitingAt: null,
        oldestWaitingMs: null,
        tasks: [],
      };
      queues.push(q);
    }
    q.tasks.push(task);
    for (const k of ['scheduled', 'queued', 'running', 'completed', 'failed', 'cancelled'] as const) q[k] += task[k];
    if (task.oldestWaitingMs !== null && (q.oldestWaitingMs === null || task.oldestWaitingMs > q.oldestWaitingMs)) {
      q.oldestWaitingMs = task.oldestWaitingMs;
      q.oldestWaitingAt = task.oldestWaitingAt;
    }
  }
  return queues;
}
