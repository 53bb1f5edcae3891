/**
 * Creates or changes a cron schedule by name. The next fire time is kept when the expression
 * and time zone are unchanged (re-declaring a schedule at every start neither delays nor
 * repeats a fire) and replaced by the caller's, computed from now, when they changed. A
 * declaration identical to the stored one writes nothing. Each write is announced on the
 * schedule channel, so internal workers re-plan their sleep at once.
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';

export interface ScheduleRow {
  name: string;
  cron: string;
  timezone: string;
  task: string;
  payloadJson: string;
  queue: string;
  priority: number;
  maxAttempts: number;
  timeoutMs: number | null;
  backoffBaseMs: number | null;
  backoffMaxMs: number | null;
  catchUp: string;
  /** Group of the fired executions (null: none). */
  group: string | null;
  /** The first fire time after now, for a new schedule or a changed expression. */
  nextRunAt: Date | null;
  /** Declared by syncSchedules. */
  synced: boolean;
}

export type ScheduleChange = 'created' | 'updated' | 'unchanged';

const COLUMNS =
  'cron, timezone, task, payload, queue, priority, max_attempts, timeout_ms, backoff_base_ms, backoff_max_ms, catch_up, synced, group_key';
const columns = (prefix: string) =>
  COLUMNS.split(', ')
    .map((c) => `${prefix}.${c}`)
    .join(', ');

const upsertStatement = statement(
  'schedule_upsert',
  (n) => `
WITH up AS (
  INSERT INTO ${n.schedules} AS s (name, ${COLUMNS}, next_run_at)
  VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11, $12, $13, $15, $14)
  ON CONFLICT (name) DO UPDATE SET
    (${COLUMNS}) = (${columns('EXCLUDED')}),
    next_run_at = CASE WHEN s.cron = EXCLUDED.cron AND s.timezone = EXCLUDED.timezone THEN s.next_run_at ELSE EXCLUDED.next_run_at END,
    revision = s.revision + 1,
    updated_at = now()
  WHERE (${columns('s')}) IS DISTINCT FROM (${columns('EXCLUDED')})
  RETURNING s.name, (s.xmax = 0) AS created
), woken AS (
  SELECT pg_notify('${n.scheduleChannel}', name) FROM up
)
SELECT created FROM up CROSS JOIN (SELECT count(*) FROM woken) w`,
);

export async function upsertSchedule(db: Queryable, n: SchemaNames, s: ScheduleRow): Promise<ScheduleChange> {
  const res = await db.query<{ created: boolean }>({
    ...upsertStatement(n),
    values: [
      s.name,
      s.cron,
      s.timezone,
      s.task,
      s.payloadJson,
      s.queue,
      s.priority,
      s.maxAttempts,
      s.timeoutMs,
      s.backoffBaseMs,
      s.backoffMaxMs,
      s.catchUp,
      s.synced,
      s.nextRunAt,
      s.group,
    ],
  });
  if (res.rows.length === 0) return 'unchanged';
  return res.rows[0]!.created ? 'created' : 'updated';
}
