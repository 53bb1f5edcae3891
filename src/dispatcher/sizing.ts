/**
 * The arithmetic that sizes claims and thread batches, apart from the classes that hold the
 * measures, so it can be checked with plain numbers.
 */

/**
 * Claim ahead the tasks that finish in this many claim round trips plus AHEAD_MARGIN_MS, and
 * at least AHEAD_MIN_MS of them: a claim statement costs Postgres and this thread about as
 * much as tens of tasks' rows, so claims of a few tasks each would take that CPU from the
 * tasks. A claim starts when half of that is left.
 */
export const AHEAD_CLAIM_TRIPS = 2;
export const AHEAD_MARGIN_MS = 10;
export const AHEAD_MIN_MS = 100;
/**
 * And at least this many tasks, as long as they are no more than AHEAD_MAX_MS of work: for
 * tasks of milliseconds, 100 ms of them is a handful, and claims (then settles, thread
 * messages and wait() reads, which follow the claims' rhythm) of a handful of tasks each cost
 * the main thread and Postgres about as much CPU per task as a no-op task, taken from the
 * threads that run the real ones. Slow tasks are not hoarded: a claim never holds more than
 * AHEAD_MAX_MS of their measured work beyond what the executors can start.
 */
export const AHEAD_MIN_TASKS = 64;
export const AHEAD_MAX_MS = 2_000;
/** Time constant of the finish-rate average. */
export const RATE_WINDOW_MS = 200;

/** Tasks to hold beyond what the executors can start: those that finish while claims travel. */
export function claimAhead(finishPerMs: number, claimMs: number): number {
  const byTime = finishPerMs * Math.max(AHEAD_MIN_MS, claimMs * AHEAD_CLAIM_TRIPS + AHEAD_MARGIN_MS);
  return Math.floor(Math.max(byTime, Math.min(AHEAD_MIN_TASKS, finishPerMs * AHEAD_MAX_MS)));
}

export interface ClaimNeed {
  /** What the executors could start now beyond what already waits for them. */
  room: number;
  /** claimAhead() of the current measures. */
  ahead: number;
  /** Claimed and not started, including claims in flight. */
  buffered: number;
  batchSize: number;
  /** Most tasks held at once, and how many are held (claimed, in flight or running). */
  maxHeld: number;
  held: number;
}

/**
 * How many tasks one claim takes: room plus the ahead buffer, less what is buffered; none
 * while more than half of the ahead buffer is left (one claim per refill, not per finish).
 */
export function claimCount(n: ClaimNeed): number {
  if (n.buffered > n.ahead / 2) return 0;
  const want = n.room + n.ahead - n.buffered;
  if (want < 1) return 0;
  return Math.max(0, Math.min(want, n.batchSize, n.maxHeld - n.held));
}

/** One step of the finish rate's moving average (tasks per ms) after `dtMs` with `finished` finishes. */
export function nextRate(rate: number, finished: number, dtMs: number): number {
  const alpha = 1 - Math.exp(-dtMs / RATE_WINDOW_MS);
  return rate + alpha * (finished / dtMs - rate);
}

/** Most tasks per thread batch. */
export const MAX_BATCH = 256;
/** Batches aim to run about this long on a thread. */
export const TARGET_BATCH_MS = 10;

/** Tasks per thread batch for tasks averaging `msAverage` (unknown yet: one, to measure). */
export function tasksPerBatch(msAverage: number | undefined): number {
  if (msAverage === undefined) return 1;
  return Math.max(1, Math.min(MAX_BATCH, Math.floor(TARGET_BATCH_MS / Math.max(msAverage, 1e-3))));
}
