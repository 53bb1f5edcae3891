/**
 * Recent throughput per queue for the dashboard: completions and failures per minute, and the
 * p50/p99 wait (from an execution's due time to the start of its last attempt), over the
 * executions that finished within the window. It reads the history through the BRIN index on
 * finished_at, so it costs what finished recently, not what the history holds.
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';

export interface MinuteCounts {
  /** Start of the minute. */
  at: Date;
  completed: number;
  failed: number;
}

export interface QueueActivity {
  queue: string;
  /** Minutes with at least one completion or failure, oldest first. */
  minutes: MinuteCounts[];
  /** Median wait of the executions finished in the window, in milliseconds (null: none started). */
  waitP50Ms: number | null;
  waitP99Ms: number | null;
}

const metricsStatement = statement(
  'queue_metrics',
  (n) => `
WITH recent AS MATERIALIZED (
  SELECT queue, status, finished_at, extract(epoch FROM started_at - run_at) * 1000 AS wait_ms
  FROM ${n.executions}
  WHERE finished_at > now() - $1 * interval '1 millisecond' AND status IN ('completed', 'failed')
), per_minute AS (
  SELECT queue, date_trunc('minute', finished_at) AS minute,
         count(*) FILTER (WHERE status = 'completed')::int AS completed,
         count(*) FILTER (WHERE status = 'failed')::int AS failed
  FROM recent GROUP BY 1, 2
), waits AS (
  SELECT queue,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY greatest(wait_ms, 0))::float8 AS p50,
         percentile_cont(0.99) WITHIN GROUP (ORDER BY greatest(wait_ms, 0))::float8 AS p99
  FROM recent WHERE wait_ms IS NOT NULL GROUP BY queue
)
SELECT m.queue, w.p50, w.p99,
       json_agg(json_build_object('at', m.minute, 'completed', m.completed, 'failed', m.failed) ORDER BY m.minute) AS minutes
FROM per_minute m LEFT JOIN waits w ON w.queue = m.queue
GROUP BY m.queue, w.p50, w.p99
ORDER BY m.queue`,
);

interface MetricsRow {
  queue: string;
  p50: number | null;
  p99: number | null;
  minutes: { at: string; completed: number; failed: number }[];
}

/** Per queue that finished anything within `windowMs`, by name. */
export async function queueActivity(db: Queryable, n: SchemaNames, windowMs: number): Promise<QueueActivity[]> {
  const res = await db.query<MetricsRow>({ ...metricsStatement(n), values: [windowMs] });
  return res.rows.map((r) => ({
    queue: r.queue,
    minutes: r.minutes.map((m) => ({ at: new Date(m.at), completed: m.completed, failed: m.failed })),
    waitP50Ms: r.p50 === null ? null : Math.round(r.p50),
    waitP99Ms: r.p99 === null ? null : Math.round(r.p99),
  }));
}
