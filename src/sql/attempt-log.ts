/**
 * The attempt history kept on each execution (executions.attempt_log): one entry per attempt
 * that did not succeed. Every statement that ends such an attempt (settle, cancel, retry of a
 * row failed before the log existed) appends with this one expression, so entries share a shape.
 */

/** Entries kept per execution: the oldest is dropped beyond this, so a row cannot grow without bound. */
export const ATTEMPT_LOG_MAX = 50;

/** SQL expressions for the fields of one entry. */
export interface AttemptEntry {
  attempt: string;
  startedAt: string;
  finishedAt: string;
  workerId: string;
  outcome: string;
  error: string;
}

/** SQL for the jsonb array `log` with `entry` appended (and the oldest dropped when full). */
export function appendAttempt(log: string, entry: AttemptEntry): string {
  return `(CASE WHEN jsonb_array_length(coalesce(${log}, '[]')) >= ${ATTEMPT_LOG_MAX} THEN ${log} - 0 ELSE coalesce(${log}, '[]') END
           || jsonb_build_array(jsonb_build_object('attempt', ${entry.attempt}, 'startedAt', ${entry.startedAt}, 'finishedAt', ${entry.finishedAt},
                                                   'workerId', ${entry.workerId}, 'outcome', ${entry.outcome}, 'error', ${entry.error})))`;
}

/** The entry for the attempt held by work_queue row `w`, ended now. */
export function claimEntry(w: string, outcome: string, error: string): AttemptEntry {
  return { attempt: `${w}.attempts`, startedAt: `${w}.claimed_at`, finishedAt: 'now()', workerId: `${w}.claimed_by`, outcome, error };
}
