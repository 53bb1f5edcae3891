/**
 * The stored claim-side controls of queues: pause/resume and rate limits (queue_controls),
 * and what status output shows of them and of group concurrency (work_groups). Every change
 * that can let more work start wakes the queue's dispatchers with a NOTIFY on the work
 * channel, in the same statement; a pause needs none, as the next claim reads it.
 *
 * A queue has a queue_controls row only while it is paused or rate-limited: the claim of an
 * ordinary queue then reads an empty index entry and nothing else.
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';

export interface RateLimit {
  /** Most starts per interval (also the largest burst after an idle spell). */
  max: number;
  intervalMs: number;
}

export interface QueueControl {
  queue: string;
  paused: boolean;
  /** When the queue was paused (null if it is not). */
  pausedAt: Date | null;
  rateLimit: RateLimit | null;
  /** Starts the rate limit allows right now (whole tokens in the bucket); null without a limit. */
  availableStarts: number | null;
}

export interface GroupAtLimit {
  queue: string;
  group: string;
  /** Executions of the group holding a slot now. */
  running: number;
  /** The groupConcurrency of the worker that claimed last. */
  limit: number;
}

export interface ControlStatus {
  /** Queues that are paused or rate-limited. */
  queues: QueueControl[];
  /** Groups running as many executions as their limit allows. */
  groupsAtLimit: GroupAtLimit[];
}

/** The bucket's tokens now: refilled since refilled_at, capped at the maximum. */
export const REFILLED_TOKENS = (c: string) =>
  `least(${c}.rate_max::float8, ${c}.tokens + greatest(0, extract(epoch FROM now() - ${c}.refilled_at)) * 1000 * ${c}.rate_max / ${c}.rate_interval_ms)`;

const pauseStatement = statement(
  'pause',
  (n) => `
INSERT INTO ${n.queueControls} AS c (queue, paused, paused_at) VALUES ($1, true, now())
ON CONFLICT (queue) DO UPDATE SET paused = true, paused_at = coalesce(c.paused_at, now())
RETURNING paused_at`,
);

// The row goes once nothing is left in it (one statement cannot both update and delete a
// row, so the two cases are disjoint); a claim holding it locked is waited for.
const resumeStatement = statement(
  'resume',
  (n) => `
WITH emptied AS (
  DELETE FROM ${n.queueControls} WHERE queue = $1 AND paused AND rate_max IS NULL RETURNING queue
), resumed AS (
  UPDATE ${n.queueControls} SET paused = false, paused_at = NULL WHERE queue = $1 AND paused AND rate_max IS NOT NULL RETURNING queue
), wake AS (
  SELECT pg_notify('${n.workChannel}', queue) FROM (SELECT queue FROM emptied UNION ALL SELECT queue FROM resumed) q
)
SELECT count(*)::int AS resumed FROM wake`,
);

// A new limit keeps the tokens already there (up to the new maximum); a first one starts full.
const setRateStatement = statement(
  'set_rate_limit',
  (n) => `
WITH upserted AS (
  INSERT INTO ${n.queueControls} AS c (queue, rate_max, rate_interval_ms, tokens, refilled_at) VALUES ($1, $2::int, $3::int, $2::int, now())
  ON CONFLICT (queue) DO UPDATE
  SET rate_max = excluded.rate_max, rate_interval_ms = excluded.rate_interval_ms, refilled_at = now(),
      tokens = CASE WHEN c.rate_max IS NULL THEN excluded.rate_max ELSE least(excluded.rate_max, ${REFILLED_TOKENS('c')}) END
  RETURNING queue
)
SELECT pg_notify('${n.workChannel}', queue) FROM upserted`,
);

const clearRateStatement = statement(
  'clear_rate_limit',
  (n) => `
WITH emptied AS (
  DELETE FROM ${n.queueControls} WHERE queue = $1 AND rate_max IS NOT NULL AND NOT paused RETURNING queue
), cleared AS (
  UPDATE ${n.queueControls} SET rate_max = NULL, rate_interval_ms = NULL, tokens = NULL, refilled_at = NULL
  WHERE queue = $1 AND rate_max IS NOT NULL AND paused RETURNING queue
)
SELECT pg_notify('${n.workChannel}', queue) FROM (SELECT queue FROM emptied UNION ALL SELECT queue FROM cleared) q`,
);

const statusStatement = statement(
  'control_status',
  (n) => `
SELECT 'queue' AS kind, queue, NULL::text AS group_key, paused, paused_at, rate_max, rate_interval_ms,
       CASE WHEN rate_max IS NOT NULL THEN floor(${REFILLED_TOKENS('c')})::int END AS available,
       NULL::int AS running, NULL::int AS group_limit
FROM ${n.queueControls} c
UNION ALL
SELECT 'group', queue, group_key, NULL, NULL, NULL, NULL, NULL, running, concurrency
FROM ${n.workGroups} WHERE running >= concurrency
ORDER BY kind DESC, queue, group_key`,
);

/** A row of statusStatement: a queue's stored controls, or a group at its limit. */
type ControlRow =
  | {
      kind: 'queue';
      queue: string;
      paused: boolean;
      paused_at: Date | null;
      rate_max: number | null;
      rate_interval_ms: number | null;
      available: number | null;
    }
  | { kind: 'group'; queue: string; group_key: string; running: number; group_limit: number };

/** Pauses a queue (stored); returns when it was paused (the first time, if it already was). */
export async function pauseQueue(db: Queryable, n: SchemaNames, queue: string): Promise<Date> {
  const res = await db.query<{ paused_at: Date }>({ ...pauseStatement(n), values: [queue] });
  return res.rows[0]!.paused_at;
}

/** Resumes a queue and wakes its workers; false if it was not paused. */
export async function resumeQueue(db: Queryable, n: SchemaNames, queue: string): Promise<boolean> {
  const res = await db.query<{ resumed: number }>({ ...resumeStatement(n), values: [queue] });
  return res.rows[0]!.resumed > 0;
}

/** Sets (or, with null, removes) a queue's rate limit, and wakes its workers. */
export async function setQueueRateLimit(db: Queryable, n: SchemaNames, queue: string, limit: RateLimit | null): Promise<void> {
  if (limit === null) await db.query({ ...clearRateStatement(n), values: [queue] });
  else await db.query({ ...setRateStatement(n), values: [queue, limit.max, limit.intervalMs] });
}

/** Paused and rate-limited queues, and groups at their limit. */
export async function controlStatus(db: Queryable, n: SchemaNames): Promise<ControlStatus> {
  const res = await db.query<ControlRow>(statusStatement(n));
  const status: ControlStatus = { queues: [], groupsAtLimit: [] };
  for (const r of res.rows) {
    if (r.kind === 'queue') {
      status.queues.push({
        queue: r.queue,
        paused: r.paused,
        pausedAt: r.paused_at,
        rateLimit: r.rate_max === null || r.rate_interval_ms === null ? null : { max: r.rate_max, intervalMs: r.rate_interval_ms },
        availableStarts: r.available,
      });
    } else {
      status.groupsAtLimit.push({ queue: r.queue, group: r.group_key, running: r.running, limit: r.group_limit });
    }
  }
  return status;
}
