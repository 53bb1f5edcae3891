/**
 * The one backoff helper of every retry loop that waits on the database: the LISTEN
 * connection's reconnects, the completer's outcome writes, the dispatcher's claims, a
 * worker's start-up steps, workflow activation commits. Delays grow exponentially up to a
 * cap and are drawn at random below it ("full jitter"): after an outage every worker would
 * otherwise retry at the same instants and hit the database that just came back in waves.
 *
 * A failed task's own retry delay is computed in SQL when its outcome is settled
 * (sql/settle.ts), from the same Backoff shape.
 */

/** Exponential backoff: baseMs * 2^attempt, capped at maxMs. */
export interface Backoff {
  baseMs: number;
  maxMs: number;
}

/** Retries of a database operation by this process (a statement, a connection). */
export const DB_RETRY: Backoff = { baseMs: 100, maxMs: 5_000 };

/**
 * The delay before retrying after the `attempt`-th failure (0-based): uniform between 0 and
 * min(maxMs, baseMs * 2^attempt). `random` returns a number in [0, 1) (Math.random unless a
 * test fixes it).
 */
export function retryDelayMs(attempt: number, backoff: Backoff = DB_RETRY, random: () => number = Math.random): number {
  // 2^attempt overflows nothing below 2^30, and the cap is reached long before.
  const ceiling = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.floor(random() * ceiling);
}
