/**
 * Cancels executions from any process, in one statement: by ids or by a filter, with every
 * unfinished descendant (the children a workflow started, theirs, and so on: a recursive walk
 * down parent_id). A queued or scheduled one is removed from its queue; a running one's worker is told on the cancel
 * channel (by lease token: a retry of it is a new claim, not cancelled) so its handler's
 * signal aborts. Each is `cancelled` at once (and entered in
 * dead_letters, so retry can run it again), and a running worker's later outcome is fenced
 * out (its work_queue row is gone) and a group-concurrency slot it held is given back. A running execution keeps its attempt count and start
 * time, and the interrupted attempt is appended to its attempt log. A workflow waiting on a
 * cancelled child is woken (its await throws a CancelledError), unless it is being cancelled too.
 *
 * An activation committing new children just as the statement runs: the statement waits for
 * its lock on the workflow row and cancels the workflow, but the children it committed were
 * not in the statement's snapshot. So when workflows were cancelled, the walk runs again from
 * them until it finds nothing left; once a workflow is cancelled no activation of it can commit
 * children (they are fenced on its status), so this ends, almost always after one more run.
 * Cancelling tasks only costs no second statement.
 *
 * Lock order matches claim and settle (work_queue before executions): the work_queue rows are
 * locked first, in id order, and the executions UPDATE waits on the queue DELETEs through its
 * join, so cancel cannot deadlock with them.
 */
import type { Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';
import { appendAttempt, claimEntry } from './attempt-log.js';
import { freeSlots } from './groups.js';
import { Params, selectIds, skippedIds, type Selection } from './select.js';
import type pg from 'pg';
import { wakeMissedParents, wakeParentsCtes, WAKE_MISSED } from './wake-parents.js';
import type { ExecutionStatus } from '../types.js';
import { retryDelayMs } from '../backoff.js';

/** Chunks of at most 400 ids keep one NOTIFY payload under Postgres' 8,000-byte limit. */
const NOTIFY_IDS_PER_MESSAGE = 400;

export interface Outcomes {
  /** Executions acted on, in id order. */
  done: string[];
  /** Ids asked for (by id) that were not acted on, with their status (null: no such execution). */
  skipped: { id: string; status: ExecutionStatus | null }[];
}

/** One pg_notify per chunk of ids from `rows` (a CTE with column `col`). */
export function notifyIds(channel: string, rows: string, col: string, where = 'true'): string {
  return `SELECT pg_notify('${channel}', string_agg(${col}::text, ','))
  FROM (SELECT ${col}, (row_number() OVER () - 1) / ${NOTIFY_IDS_PER_MESSAGE} AS chunk FROM ${rows} WHERE ${where}) f
  GROUP BY chunk`;
}

export async function cancelExecutions(db: Queryable, n: SchemaNames, sel: Selection, errorJson: string): Promise<Outcomes> {
  // Only unfinished executions can be cancelled: select among those.
  const statuses = sel.statuses ?? ['scheduled', 'queued', 'running'];
  const first = await runCancel(db, n, cancelStatement(n, { ...sel, statuses }, errorJson, true));
  const result = outcomes(first);
  // Children committed while a run went on belong to workflows it cancelled: walk again
  // from those, until a run cancels no workflow.
  let workflows = workflowIds(first.rows);
  while (workflows.length > 0) {
    const again = await runCancel(db, n, cancelStatement(n, { ids: workflows }, errorJson, false));
    result.done.push(...outcomes(again).done);
    workflows = workflowIds(again.rows);
  }
  result.done.sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
  return result;
}

/** Deadlock victims retried before the error is the caller's. */
const DEADLOCK_RETRIES = 5;

/**
 * Runs one cancel statement. It locks a whole tree of executions while activations of the same
 * workflows lock theirs in another order, so Postgres may pick it as a deadlock victim; the
 * victim's statement was rolled back whole, so running it again is safe.
 */
async function runCancel(db: Queryable, n: SchemaNames, q: { text: string; values: unknown[] }) {
  for (let attempt = 0; ; attempt++) {
    let res: pg.QueryResult<CancelRow>;
    try {
      res = await db.query<CancelRow>(q);
    } catch (err) {
      if ((err as { code?: string }).code !== DEADLOCK_DETECTED || attempt >= DEADLOCK_RETRIES) throw err;
      await new Promise((resolve) => setTimeout(resolve, retryDelayMs(attempt, DEADLOCK_BACKOFF)));
      continue;
    }
    // The statement has committed: parents it could not wake are checked now (see wake-parents.ts).
    await wakeMissedParents(db, n, res.rows.find((r) => r.missed_parents)?.missed_parents);
    return res;
  }
}

const DEADLOCK_DETECTED = '40P01';
const DEADLOCK_BACKOFF = { baseMs: 10, maxMs: 200 };

function workflowIds(rows: CancelRow[]): string[] {
  return rows.filter((r) => r.done && r.workflow).map((r) => r.id);
}

/**
 * The roots selected by `sel` and their descendants; `reportSkipped` adds a row per id asked
 * for that was not cancelled (the first run).
 */
function cancelStatement(n: SchemaNames, sel: Selection, errorJson: string, reportSkipped: boolean): { text: string; values: unknown[] } {
  const p = new Params();
  const roots = selectIds(n, sel, p);
  const error = p.add(errorJson, 'jsonb');
  const text = `
WITH RECURSIVE roots AS (${roots}
), target AS (
  SELECT id FROM roots
  UNION ALL
  SELECT c.id FROM ${n.executions} c JOIN target t ON c.parent_id = t.id
), locked AS (
  SELECT w.execution_id FROM ${n.workQueue} w WHERE w.execution_id IN (SELECT id FROM target)
  ORDER BY w.execution_id
  FOR UPDATE
), unqueued AS (
  DELETE FROM ${n.workQueue} w USING locked l WHERE w.execution_id = l.execution_id
  RETURNING w.execution_id, w.claimed_by, w.claimed_at, w.attempts, w.lease_token, w.queue, w.group_key, w.holds_group_slot
), ${freeSlots(n, 'unqueued')}, unscheduled AS (
  DELETE FROM ${n.scheduledQueue} s USING target t WHERE s.execution_id = t.id
  RETURNING s.execution_id
), cancelled AS (
  UPDATE ${n.executions} e
  SET status = 'cancelled', finished_at = now(), error = ${error},
      attempts = coalesce(u.attempts, e.attempts),
      started_at = CASE WHEN u.claimed_by IS NOT NULL THEN u.claimed_at ELSE e.started_at END,
      attempt_log = CASE WHEN u.claimed_by IS NOT NULL THEN ${appendAttempt('e.attempt_log', claimEntry('u', "'cancelled'", error))}
                         ELSE e.attempt_log END
  FROM target t LEFT JOIN unqueued u ON u.execution_id = t.id
  WHERE e.id = t.id AND e.status IN ('scheduled', 'queued')
    AND (SELECT count(*) FROM unscheduled) >= 0
  RETURNING e.id, e.kind, e.queue, e.name, e.created_at, e.parent_id, e.parent_seq, e.status, u.claimed_by, u.lease_token
), dead AS (
  INSERT INTO ${n.deadLetters} (execution_id, queue, name, status, created_at)
  SELECT id, queue, name, 'cancelled', created_at FROM cancelled
  ON CONFLICT (execution_id) DO UPDATE SET status = EXCLUDED.status
), told AS (
  ${notifyIds(n.cancelChannel, 'cancelled', 'lease_token', 'claimed_by IS NOT NULL')}
), announced AS (
  ${notifyIds(n.doneChannel, 'cancelled', 'id')}
), cancelled_roots AS (
  SELECT parent_id, parent_seq, status FROM cancelled c WHERE NOT EXISTS (SELECT 1 FROM target t WHERE t.id = c.parent_id)
), ${wakeParentsCtes(n, 'cancelled_roots')}
SELECT id::text, true AS done, NULL AS status, kind = 'workflow' AS workflow, ${WAKE_MISSED} FROM cancelled
  CROSS JOIN (SELECT count(*) FROM told) t CROSS JOIN (SELECT count(*) FROM announced) a CROSS JOIN (SELECT count(*) FROM wake_notify) w
${reportSkipped && sel.ids ? `UNION ALL SELECT *, NULL, NULL FROM ${skippedIds(n, sel.ids, p, 'cancelled')} s` : ''}`;
  return { text, values: p.values };
}

/** A row of an admin statement (cancel, retry): an id it changed, or one it skipped and why. */
export interface OutcomeRow {
  id: string;
  done: boolean;
  /** A skipped execution's status (null: it does not exist). */
  status: ExecutionStatus | null;
}

/** A cancel row also says whether it was a workflow (its children are cancelled next). */
interface CancelRow extends OutcomeRow {
  workflow: boolean | null;
  /** The parents to check for a wake-up once committed (the same on every row). */
  missed_parents: string[] | null;
}

/** Splits the rows of an admin statement into done and skipped. */
export function outcomes(res: { rows: OutcomeRow[] }): Outcomes {
  const done: string[] = [];
  const skipped: Outcomes['skipped'] = [];
  for (const r of res.rows) {
    if (r.done) done.push(r.id);
    else skipped.push({ id: r.id, status: r.status });
  }
  done.sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
  return { done, skipped };
}
