/**
 * Firing cron schedules. The internal worker reads the due schedules (no lock), computes their
 * fire times and next time in JS (croner), then fires them all in one statement that advances
 * each schedule and inserts its executions together. Each schedule row is taken only if its
 * revision is still the one read (a compare-and-set: a concurrent fire or change bumps it) and
 * not locked by another firing internal worker (SKIP LOCKED), so any number of processes fire
 * each due time exactly once, and a crash in between fires nothing twice and loses nothing.
 * A fired execution's run_at is its due time.
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';

export interface DueSchedule {
  name: string;
  cron: string;
  timezone: string;
  catchUp: string;
  nextRunAt: Date;
  revision: string;
  /** The database's clock when read: fire times are judged on it, not on the app's. */
  now: Date;
}

interface DueRow {
  name: string;
  cron: string;
  timezone: string;
  catch_up: string;
  next_run_at: Date;
  /** bigint, as text. */
  revision: string;
  now: Date;
}

const dueStatement = statement(
  'schedule_due',
  (n) => `
SELECT name, cron, timezone, catch_up, next_run_at, revision, now() AS now FROM ${n.schedules}
WHERE next_run_at <= now()
ORDER BY next_run_at
LIMIT $1`,
);

export async function dueSchedules(db: Queryable, n: SchemaNames, limit: number): Promise<DueSchedule[]> {
  const res = await db.query<DueRow>({ ...dueStatement(n), values: [limit] });
  return res.rows.map((r) => ({
    name: r.name,
    cron: r.cron,
    timezone: r.timezone,
    catchUp: r.catch_up,
    nextRunAt: r.next_run_at,
    revision: r.revision,
    now: r.now,
  }));
}

export interface ScheduleAdvance {
  name: string;
  revision: string;
  /** The new next_run_at (null: the expression has no future time). */
  nextRunAt: Date | null;
  /** Due times to fire, oldest first (may be none). */
  fires: Date[];
}

const fireStatement = statement(
  'schedule_fire',
  (n) => `
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::bigint[], $3::timestamptz[]) AS i(name, revision, next_run_at)
), taken AS (
  SELECT s.name, i.next_run_at FROM ${n.schedules} s
  JOIN input i ON i.name = s.name AND i.revision = s.revision
  WHERE s.name = ANY($1::text[]) AND s.next_run_at <= now()
  ORDER BY s.name
  FOR UPDATE OF s SKIP LOCKED
), advanced AS (
  UPDATE ${n.schedules} s
  SET next_run_at = t.next_run_at, revision = s.revision + 1,
      last_fired_at = coalesce((SELECT max(f.due_at) FROM unnest($4::text[], $5::timestamptz[]) AS f(name, due_at) WHERE f.name = s.name), s.last_fired_at)
  FROM taken t
  WHERE s.name = t.name
  RETURNING s.name, s.task, s.queue, s.payload, s.priority, s.max_attempts, s.timeout_ms, s.backoff_base_ms, s.backoff_max_ms, s.group_key
), inserted AS (
  INSERT INTO ${n.executions} (name, queue, status, payload, payload_bytes, priority, max_attempts, timeout_ms, run_at, backoff_base_ms, backoff_max_ms,
                               group_key)
  SELECT a.task, a.queue, 'queued', a.payload, pg_column_size(a.payload), a.priority, a.max_attempts, a.timeout_ms, f.due_at,
         a.backoff_base_ms, a.backoff_max_ms, a.group_key
  FROM advanced a
  JOIN unnest($4::text[], $5::timestamptz[]) WITH ORDINALITY AS f(name, due_at, ord) ON f.name = a.name
  ORDER BY f.ord
  RETURNING id, name, queue, priority, lease_ms, payload_bytes, group_key
), ready AS (
  INSERT INTO ${n.workQueue} (execution_id, queue, name, priority, lease_ms, payload_bytes, group_key)
  SELECT id, queue, name, priority, lease_ms, payload_bytes, group_key FROM inserted
), wake AS (
  SELECT pg_notify('${n.workChannel}', queue) FROM (SELECT DISTINCT queue FROM inserted) q
)
SELECT (SELECT count(*) FROM advanced)::int AS advanced, (SELECT count(*) FROM inserted)::int AS fired,
       (SELECT count(*) FROM wake)::int AS woken`,
);

/** Returns how many schedules were advanced and executions inserted (others were taken meanwhile). */
export async function fireSchedules(
  db: Queryable,
  n: SchemaNames,
  advances: ScheduleAdvance[],
): Promise<{ advanced: number; fired: number }> {
  const fires = advances.flatMap((a) => a.fires.map((at) => [a.name, at] as const));
  const res = await db.query<{ advanced: number; fired: number }>({
    ...fireStatement(n),
    values: [
      advances.map((a) => a.name),
      advances.map((a) => a.revision),
      advances.map((a) => a.nextRunAt),
      fires.map(([name]) => name),
      fires.map(([, at]) => at),
    ],
  });
  return res.rows[0]!;
}

// On the database's clock, like the due check itself.
const nextStatement = statement(
  'schedule_next',
  (n) => `
SELECT extract(epoch FROM min(next_run_at) - now()) * 1000 AS ms FROM ${n.schedules}`,
);

/** Milliseconds until the earliest schedule is due (null if none). */
export async function msUntilNextSchedule(db: Queryable, n: SchemaNames): Promise<number | null> {
  const res = await db.query<{ ms: string | null }>(nextStatement(n));
  const ms = res.rows[0]!.ms;
  return ms === null ? null : Number(ms);
}
