/**
 * How the dispatcher runs one claimed attempt, whatever runs it: a handler on the main
 * thread or a module on a Piscina thread. The dispatcher owns leases, timeouts and settling;
 * an executor only runs code and reports what happened.
 */
import type { ClaimedTask } from '../sql/claim.js';
import type { AbortReason } from '../errors.js';

/** What one attempt produced, ready to be written. */
export type AttemptResult =
  | { ok: true; resultJson: string }
  | { ok: false; errorJson: string; retryable: boolean };

export interface AttemptRun {
  /** Settles once the handler returned, threw, or was killed; never rejects. */
  readonly result: Promise<AttemptResult>;
  /**
   * Calls `cb` once the attempt actually starts (at once on the main thread; when its batch is
   * handed to a thread otherwise), so a timeout does not count time spent queued here.
   */
  whenStarted(cb: () => void): void;
  /** Asks the handler to stop (its ctx.signal aborts); it may still finish. */
  abort(reason: AbortReason): void;
  /**
   * Stops waiting for a handler that ignored abort: a thread is terminated and replaced; a
   * main-thread handler cannot be stopped, so its attempt is abandoned (its result ignored).
   */
  kill(reason: AbortReason): void;
}

export interface Executor {
  /** `reportProgress` takes a ctx.progress() value already checked and encoded as JSON. */
  start(task: ClaimedTask, queue: string, requestHeartbeat: () => void, reportProgress: (json: string) => void): AttemptRun;
  close(): Promise<void>;
}
