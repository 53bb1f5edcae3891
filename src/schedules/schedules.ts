/**
 * The schedule API behind rhythm.schedule / unschedule / schedules / syncSchedules: input
 * checks (every mistake named before anything is written), the stored row, and the view with
 * the next fire times. syncSchedules is what a process that declares its schedules in a
 * config file runs at start: it makes the stored set match the declared one.
 */
import type pg from 'pg';
import { RhythmValidationError } from '../errors.js';
import { encodeJson } from '../json.js';
import { inTransaction } from '../db/transaction.js';
import type { SchemaNames } from '../db/schema.js';
import { checkGroup, checkInt, checkKnownKeys, checkQueueName, checkTaskName, describe } from '../validate.js';
import { checkBackoff, isTaskDefinition, type TaskDefinition } from '../task-definition.js';
import { upsertSchedule, type ScheduleChange, type ScheduleRow } from '../sql/schedule-upsert.js';
import { deleteSchedule, deleteUnlistedSchedules } from '../sql/schedule-delete.js';
import { listSchedules } from '../sql/schedule-list.js';
import { CATCH_UP_MODES, nextAfter, parseCron, upcoming, type CatchUp } from './cron.js';

export interface ScheduleOptions<P = unknown> {
  /** 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first; @daily etc. */
  cron: string;
  /** IANA time zone the expression is read in (default "UTC"); DST is handled. */
  timezone?: string;
  /** The task to enqueue at each fire: a name, or a definition (its defaults apply). */
  task: string | TaskDefinition<P, unknown>;
  /** Payload of every fired execution (default null). */
  payload?: P;
  /** Queue (default: the definition's, else "default"). */
  queue?: string;
  /**
   * Fire times missed while no internal worker ran (more than a minute late): 'none' (default)
   * drops them, 'last' fires the latest of them once, 'all' fires each (the latest 100 at most).
   */
  catchUp?: CatchUp;
  priority?: number;
  maxAttempts?: number;
  timeoutMs?: number;
  backoff?: { baseMs?: number; maxMs?: number };
  /** Group (for group concurrency) of every execution it fires, as enqueue's `group`. */
  group?: string;
}

export interface Schedule {
  name: string;
  cron: string;
  timezone: string;
  task: string;
  payload: unknown;
  queue: string;
  catchUp: CatchUp;
  priority: number;
  maxAttempts: number;
  timeoutMs: number | null;
  backoff: { baseMs: number | null; maxMs: number | null } | null;
  /** Group of the executions it fires (null: none). */
  group: string | null;
  /** The next due time not yet fired (in the past while an internal worker is catching up); null: none. */
  nextRunAt: Date | null;
  /** The next NEXT_RUNS due times, from nextRunAt on. */
  nextRuns: Date[];
  /** The latest due time fired. */
  lastFiredAt: Date | null;
  /** Declared by syncSchedules (a config file), which removes it once no longer declared. */
  synced: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export interface SyncResult {
  created: string[];
  updated: string[];
  unchanged: string[];
  /** Schedules an earlier sync declared that are no longer declared. */
  removed: string[];
}

/** Due times listed by schedules(). */
const NEXT_RUNS = 5;
const SCHEDULE_OPTIONS = [
  'cron',
  'timezone',
  'task',
  'payload',
  'queue',
  'catchUp',
  'priority',
  'maxAttempts',
  'timeoutMs',
  'backoff',
  'group',
] as const;

/** The stored form of a declaration; throws RhythmValidationError naming the first problem. */
export function toScheduleRow(name: unknown, options: ScheduleOptions, synced: boolean, now = new Date()): ScheduleRow {
  checkScheduleName(name);
  const what = `schedule ${JSON.stringify(name)}`;
  try {
    checkKnownKeys('schedule', options, SCHEDULE_OPTIONS);
    const timezone = options.timezone ?? 'UTC';
    const cron = parseCron(options.cron, timezone);
    const def = isTaskDefinition(options.task) ? options.task : undefined;
    const task = def ? def.name : checkTaskName(options.task);
    const defaults = def?.defaults ?? {};
    const catchUp = options.catchUp ?? 'none';
    if (!CATCH_UP_MODES.includes(catchUp)) {
      throw new RhythmValidationError(`option catchUp must be 'none', 'last' or 'all', got ${describe(catchUp)}`);
    }
    const backoff = checkBackoff('backoff', options.backoff ?? defaults.backoff);
    return {
      name,
      cron: options.cron,
      timezone,
      task,
      payloadJson: encodeJson(options.payload === undefined ? null : options.payload, 'payload'),
      queue: checkQueueName(options.queue ?? defaults.queue ?? 'default'),
      priority: checkInt('priority', options.priority ?? defaults.priority, -2_147_483_648) ?? 0,
      maxAttempts: checkInt('maxAttempts', options.maxAttempts ?? defaults.maxAttempts, 1) ?? 3,
      timeoutMs: checkInt('timeoutMs', options.timeoutMs ?? defaults.timeoutMs, 1) ?? null,
      backoffBaseMs: backoff.baseMs,
      backoffMaxMs: backoff.maxMs,
      catchUp,
      group: checkGroup(options.group) ?? null,
      nextRunAt: nextAfter(cron, now),
      synced,
    };
  } catch (err) {
    if (err instanceof RhythmValidationError) throw new RhythmValidationError(`${what}: ${err.message}`);
    throw err;
  }
}

function checkScheduleName(name: unknown): asserts name is string {
  try {
    checkTaskName(name);
  } catch (err) {
    throw new RhythmValidationError(`schedule name: ${(err as Error).message.replace(/^task name /, '')}`);
  }
}

export async function schedule(pool: pg.Pool, n: SchemaNames, name: string, options: ScheduleOptions): Promise<ScheduleChange> {
  return upsertSchedule(pool, n, toScheduleRow(name, options, false));
}

export async function unschedule(pool: pg.Pool, n: SchemaNames, name: string): Promise<boolean> {
  checkScheduleName(name);
  return deleteSchedule(pool, n, name);
}

export async function schedules(pool: pg.Pool, n: SchemaNames): Promise<Schedule[]> {
  const rows = await listSchedules(pool, n);
  return rows.map((r) => {
    let nextRuns: Date[] = [];
    if (r.nextRunAt !== null) {
      try {
        nextRuns = upcoming(parseCron(r.cron, r.timezone), r.nextRunAt, NEXT_RUNS);
      } catch {
        nextRuns = [r.nextRunAt];
      }
      // A next_run_at off the expression's grid (a catch-up pending) is itself the next fire.
      if (nextRuns[0]?.getTime() !== r.nextRunAt.getTime()) nextRuns = [r.nextRunAt, ...nextRuns].slice(0, NEXT_RUNS);
    }
    return {
      name: r.name,
      cron: r.cron,
      timezone: r.timezone,
      task: r.task,
      payload: r.payload,
      queue: r.queue,
      catchUp: r.catchUp as CatchUp,
      priority: r.priority,
      maxAttempts: r.maxAttempts,
      timeoutMs: r.timeoutMs,
      backoff: r.backoffBaseMs === null && r.backoffMaxMs === null ? null : { baseMs: r.backoffBaseMs, maxMs: r.backoffMaxMs },
      group: r.group,
      nextRunAt: r.nextRunAt,
      nextRuns,
      lastFiredAt: r.lastFiredAt,
      synced: r.synced,
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
    };
  });
}

/**
 * Makes the stored schedules match `declared` (name -> options), as a config file declares
 * them: creates and updates those listed, and removes those an earlier sync created that are
 * no longer listed. Schedules made with schedule() are never removed by a sync. Every entry
 * is checked before anything is written; the writes are one transaction, one sync at a time.
 */
export async function syncSchedules(pool: pg.Pool, n: SchemaNames, declared: Record<string, ScheduleOptions>): Promise<SyncResult> {
  if (declared === null || typeof declared !== 'object' || Array.isArray(declared)) {
    throw new RhythmValidationError(`syncSchedules expects an object of schedules by name, got ${describe(declared)}`);
  }
  const now = new Date();
  const rows = Object.entries(declared).map(([name, options]) => toScheduleRow(name, options, true, now));
  return inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`rhythm:schedules:${n.schema}`]);
    const result: SyncResult = { created: [], updated: [], unchanged: [], removed: [] };
    for (const row of rows) result[await upsertSchedule(client, n, row)].push(row.name);
    result.removed = await deleteUnlistedSchedules(
      client,
      n,
      rows.map((r) => r.name),
    );
    return result;
  });
}
