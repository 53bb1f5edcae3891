/**
 * Records the outcome of many attempts in one statement (the batched completer's write).
 * An outcome counts only if its lease token still matches the work_queue row: a worker whose
 * lease expired and was taken over changes nothing, so no result is ever overwritten.
 * Retryable failures with attempts left go to scheduled_queue with exponential backoff and
 * jitter (the execution's own backoff if it has one); every execution that reaches a final status is announced on the done channel, and
 * wakes its parent workflow if that waits for it (wake-parents.ts).
 * An attempt that did not succeed is appended to the execution's attempt log, and a failed
 * execution is entered in dead_letters (see migrations/003_admin.sql); a success adds nothing.
 * Group-concurrency slots held by the settled attempts are given back in the same statement.
 */
import { statement, type Queryable } from './queryable.js';
import type { Backoff } from '../backoff.js';
import type { SchemaNames } from '../db/schema.js';
import { appendAttempt, claimEntry } from './attempt-log.js';
import { freeSlots } from './groups.js';
import { wakeParentsCtes, WAKE_MISSED } from './wake-parents.js';

/** completed | failed (retry if attempts remain) | fatal (no retry) | cancelled */
export type Outcome = 'completed' | 'failed' | 'fatal' | 'cancelled';

export interface Settlement {
  id: string;
  leaseToken: string;
  outcome: Outcome;
  resultJson: string | null;
  errorJson: string | null;
}

export interface Settled {
  id: string;
  status: string;
}

/** Chunks of at most 400 ids keep one NOTIFY payload under Postgres' 8,000-byte limit. */
const NOTIFY_IDS_PER_MESSAGE = 400;

/** A retryable failure with attempts left (backoff: base * 2^(attempt-1), capped, jittered 50-100%). */
const RETRY = `(i.outcome = 'failed' AND r.attempts < e.max_attempts)`;

const settleStatement = statement(
  'settle',
  (n) => `
WITH input AS (
  SELECT t.id, t.lease_token, t.outcome, nullif(r.result, 'null') AS result, nullif(e.error, 'null') AS error
  FROM unnest($1::bigint[], $2::bigint[], $3::text[]) WITH ORDINALITY AS t(id, lease_token, outcome, ord)
  JOIN jsonb_array_elements($4::jsonb) WITH ORDINALITY AS r(result, ord) USING (ord)
  JOIN jsonb_array_elements($5::jsonb) WITH ORDINALITY AS e(error, ord) USING (ord)
), released AS (
  DELETE FROM ${n.workQueue} w USING input i
  WHERE w.execution_id = ANY($1::bigint[]) AND w.execution_id = i.id AND w.lease_token = i.lease_token
  RETURNING w.execution_id, w.lease_token, w.attempts, w.claimed_at, w.claimed_by, w.queue, w.group_key, w.holds_group_slot
), ${freeSlots(n, 'released')}, settled AS (
  UPDATE ${n.executions} e
  SET status = CASE WHEN ${RETRY} THEN 'scheduled'
                    WHEN i.outcome IN ('failed', 'fatal') THEN 'failed'
                    ELSE i.outcome END,
      attempts = r.attempts,
      started_at = r.claimed_at,
      result = i.result,
      error = i.error,
      run_at = CASE WHEN ${RETRY}
                    THEN now() + least(coalesce(e.backoff_max_ms, $7::float8), coalesce(e.backoff_base_ms, $6::float8) * power(2, least(r.attempts - 1, 50)))
                         * (0.5 + random() / 2) * interval '1 millisecond'
                    ELSE e.run_at END,
      finished_at = CASE WHEN ${RETRY} THEN NULL ELSE now() END,
      attempt_log = CASE WHEN i.outcome = 'completed' THEN e.attempt_log
                         ELSE ${appendAttempt('e.attempt_log', claimEntry('r', "CASE WHEN i.outcome = 'cancelled' THEN 'cancelled' ELSE 'failed' END", 'i.error'))} END
  FROM input i
  JOIN released r ON r.execution_id = i.id AND r.lease_token = i.lease_token
  WHERE e.id = i.id AND e.status = 'queued'
  RETURNING e.id, e.status, e.run_at, e.queue, e.name, e.created_at, e.parent_id, e.parent_seq
), rescheduled AS (
  INSERT INTO ${n.scheduledQueue} (execution_id, run_at)
  SELECT id, run_at FROM settled WHERE status = 'scheduled'
), dead AS (
  INSERT INTO ${n.deadLetters} (execution_id, queue, name, status, created_at)
  SELECT id, queue, name, status, created_at FROM settled WHERE status IN ('failed', 'cancelled')
  ON CONFLICT (execution_id) DO UPDATE SET status = EXCLUDED.status
), announced AS (
  SELECT pg_notify('${n.doneChannel}', string_agg(id::text, ','))
  FROM (SELECT id, (row_number() OVER () - 1) / ${NOTIFY_IDS_PER_MESSAGE} AS chunk FROM settled WHERE status <> 'scheduled') f
  GROUP BY chunk
), ${wakeParentsCtes(n, 'settled')}
SELECT id, status, ${WAKE_MISSED} FROM settled CROSS JOIN (SELECT count(*) FROM announced) a CROSS JOIN (SELECT count(*) FROM wake_notify) w`,
);

/**
 * Returns the executions that were settled; any others had lost their lease (stale token).
 * Adds to `missedParents` the parent workflows whose wake-up the caller must check once this
 * has committed (wakeMissedParents, see wake-parents.ts).
 */
export async function settleAttempts(
  db: Queryable,
  n: SchemaNames,
  items: Settlement[],
  backoff: Backoff,
  missedParents: string[],
): Promise<Settled[]> {
  // Ids, tokens and outcomes are digits and plain words: their array literals need no quoting,
  // and building them here costs a fraction of the driver's per-element escaping. Results and
  // errors are JSON text already: one JSON array each, as in enqueue.
  let ids = '';
  let tokens = '';
  let outcomes = '';
  let results = '';
  let errors = '';
  for (let i = 0; i < items.length; i++) {
    const s = items[i]!;
    const sep = i === 0 ? '' : ',';
    ids += sep + checkDigits(s.id);
    tokens += sep + checkDigits(s.leaseToken);
    outcomes += sep + s.outcome;
    results += sep + (s.resultJson ?? 'null');
    errors += sep + (s.errorJson ?? 'null');
  }
  const res = await db.query<Settled & { missed_parents: string[] | null }>({
    ...settleStatement(n),
    values: [`{${ids}}`, `{${tokens}}`, `{${outcomes}}`, `[${results}]`, `[${errors}]`, backoff.baseMs, backoff.maxMs],
  });
  const missed = res.rows[0]?.missed_parents;
  if (missed) missedParents.push(...missed);
  return res.rows.map((r) => ({ id: r.id, status: r.status }));
}

/** Ids and lease tokens come from the database as bigint text; anything else would change the array literal's meaning. */
function checkDigits(v: string): string {
  if (!/^\d+$/.test(v)) throw new TypeError(`not a bigint id or lease token: ${JSON.stringify(v)}`);
  return v;
}
