/**
 * Queue depth for the metrics: per queue, how many executions are scheduled, queued and
 * running now, and how long the oldest ready one has been waiting. One statement over the
 * queue tables only (work_queue, and scheduled_queue joined to its executions rows for their
 * queue), never the history: its cost follows the unfinished executions, not the history kept.
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';

export interface QueueDepth {
  queue: string;
  scheduled: number;
  queued: number;
  running: number;
  /**
   * Seconds the oldest ready execution has been due (on the database's clock); 0 when none is
   * ready. Among the next OLDEST_SAMPLE in claim order when more are ready.
   */
  oldestWaitingSeconds: number;
}

/** Ready executions per queue whose due time the oldest-waiting figure looks at. */
export const OLDEST_SAMPLE = 1000;

// Counts read work_queue alone (a narrow table); scheduled_queue has no queue column, so its
// rows are joined to their executions. The oldest waiting time joins executions only for the
// next OLDEST_SAMPLE ready rows of each queue in claim order (work_queue_ready_idx, read in
// order and stopped there): exact while a queue has that many ready or fewer, and bounded in
// cost however long the queue grows.
const depthStatement = statement(
  'queue_depth',
  (n) => `
WITH counts AS (
  SELECT queue,
         count(*) FILTER (WHERE claimed_until IS NULL) AS queued,
         count(*) FILTER (WHERE claimed_until IS NOT NULL) AS running
  FROM ${n.workQueue} GROUP BY queue
), work AS (
  SELECT c.queue, c.queued, c.running,
         (SELECT min(e.run_at)
          FROM (SELECT w.execution_id FROM ${n.workQueue} w
                WHERE w.queue = c.queue AND w.claimed_until IS NULL
                ORDER BY w.priority DESC, w.execution_id
                LIMIT ${OLDEST_SAMPLE}) r
          JOIN ${n.executions} e ON e.id = r.execution_id) AS oldest
  FROM counts c
), sched AS (
  SELECT e.queue, count(*) AS scheduled
  FROM ${n.scheduledQueue} s JOIN ${n.executions} e ON e.id = s.execution_id
  GROUP BY e.queue
)
SELECT coalesce(work.queue, sched.queue) AS queue,
       coalesce(sched.scheduled, 0)::int AS scheduled,
       coalesce(work.queued, 0)::int AS queued,
       coalesce(work.running, 0)::int AS running,
       coalesce(greatest(0, extract(epoch FROM now() - work.oldest)), 0)::float8 AS oldest_waiting_s
FROM work FULL JOIN sched ON sched.queue = work.queue
ORDER BY 1`,
);

/** Every queue with anything scheduled, queued or running, in name order. */
export async function queueDepths(db: Queryable, n: SchemaNames): Promise<QueueDepth[]> {
  const res = await db.query<{ queue: string; scheduled: number; queued: number; running: number; oldest_waiting_s: number }>(
    depthStatement(n),
  );
  return res.rows.map((r) => ({
    queue: r.queue,
    scheduled: r.scheduled,
    queued: r.queued,
    running: r.running,
    oldestWaitingSeconds: r.oldest_waiting_s,
  }));
}
