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
  nextRunAt: Date | null;
  lastFiredAt: Date | null;
  synced: boolean;
  createdAt: Date;
  updatedAt: Date;
}

interface ScheduleRow {
  name: string;
  cron: string;
  timezone: string;
  task: string;
  payload: unknown;
  queue: string;
  priority: number;
  max_attempts: number;
  timeout_ms: number | null;
  backoff_base_ms: number | null;
  backoff_max_ms: number | null;
  catch_up: string;
  next_run_at: Date | null;
  last_fired_at: Date | null;
  synced: boolean;
  created_at: Date;
  updated_at: Date;
}

const listStatement = statement('schedule_list', (n) => `
SELECT name, cron, timezone, task, payload, queue, priority, max_attempts, timeout_ms, backoff_base_ms, backoff_max_ms,
       catch_up, next_run_at, last_fired_at, synced, created_at, updated_at
FROM ${n.schedules} ORDER BY name`);

export async function listSchedules(db: Queryable, n: SchemaNames): Promise<StoredSchedule[]> {
  const res = await db.query<ScheduleRow>(listStatement(n));
  return res.rows.map((r) => ({
    name: r.name,
    cron: r.cron,
    timezone: r.timezone,
    task: r.task,
    payload: r.payload,
    queue: r.queue,
    priority: r.priority,
    maxAttempts: r.max_attempts,
    timeoutMs: r.timeout_ms,
    backoffBaseMs: r.backoff_base_ms,
    backoffMaxMs: r.backoff_max_ms,
    catchUp: r.catch_up,
    nextRunAt: r.next_run_at,
    lastFiredAt: r.last_fired_at,
    synced: r.synced,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }));
}
