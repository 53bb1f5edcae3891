/** Reads every cron schedule (for rhythm.schedules() and the CLI). */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';

export interface StoredSchedule {
  name: string;
  cron: string;
  timezone: string;
  task: string;
  payload: unknown;
  queue: string;
  priority: number;
  maxAttempts: number;
  timeoutMs: number | null;
  backoffBaseMs: number | null;
  backoffMaxMs: number | null;
  catchUp: string;
  group: string | null;
  nextRunAt: Date | null;
  lastFiredAt: Date | null;
  synced: boolean;
  createdAt: Date;
  updatedAt: Date;
}

const listStatement = statement(
  'schedule_list',
  (n) => `
SELECT name, cron, timezone, task, payload, queue, priority, max_attempts AS "maxAttempts", timeout_ms AS "timeoutMs",
       backoff_base_ms AS "backoffBaseMs", backoff_max_ms AS "backoffMaxMs", catch_up AS "catchUp", group_key AS "group", next_run_at AS "nextRunAt",
       last_fired_at AS "lastFiredAt", synced, created_at AS "createdAt", updated_at AS "updatedAt"
FROM ${n.schedules} ORDER BY name`,
);

/** The columns are aliased to StoredSchedule's fields, so each row is one as it comes. */
export async function listSchedules(db: Queryable, n: SchemaNames): Promise<StoredSchedule[]> {
  const res = await db.query<StoredSchedule>(listStatement(n));
  return res.rows;
}
