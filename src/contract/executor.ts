/**
 * How the dispatcher runs one claimed attempt, whatever runs it: a handler on the main
 * thread or a module on a Piscina thread. The dispatcher owns leases, timeouts and settling;
 * an executor only runs code and reports what happened, through the attempt's hooks.
 */
import type { ClaimedTask } from '../sql/claim.js';
import type { AbortReason } from '../errors.js';
import type { Span } from '@opentelemetry/api';

/** What one attempt produced, ready to be written. */
export type AttemptResult = { ok: true; resultJson: string } | { ok: false; errorJson: string; retryable: boolean };

/**
 * The executor has written the attempt's outcome itself, fenced by its lease token (a workflow
 * activation commits its state and children in its own transaction): nothing is left to write.
 */
export interface RecordedResult {
  recorded: true;
}

/** What an executor tells the dispatcher about one attempt (may be called during start()). */
export interface RunHooks {
  /**
   * The attempt was handed to what runs it: at once on the main thread; to a thread otherwise,
   * where it may wait behind that thread's other tasks (see AttemptRun.startedAt). Once.
   */
  handedOff(): void;
  /**
   * The handler returned, threw, or was killed or withdrawn. Exactly once. `runMs`: how long
   * the handler ran, when the executor measured it (a thread does); else the time since the
   * hand-off is taken.
   */
  finished(result: AttemptResult | RecordedResult, runMs?: number): void;
  /** The attempt's span while tracing (an OpenTelemetry Span), for the handler to run under. */
  span?(): Span | undefined;
  /** The handler called ctx.heartbeat(). */
  heartbeat(): void;
  /** The handler called ctx.progress(): the value, already checked and encoded as JSON. */
  progress(json: string): void;
}

export interface AttemptRun {
  /** When the handler started (epoch ms), or undefined if it has not: timeouts count from it. */
  startedAt(): number | undefined;
  /**
   * Asks the handler to stop (its ctx.signal aborts); it may still finish. An attempt that
   * has not started yet finishes at once as aborted.
   */
  abort(reason: AbortReason): void;
  /**
   * Stops waiting for a handler that ignored abort: a thread is terminated and replaced; a
   * main-thread handler cannot be stopped, so its attempt is abandoned (its result ignored).
   */
  kill(reason: AbortReason): void;
}

export interface Executor {
  start(task: ClaimedTask, queue: string, hooks: RunHooks): AttemptRun;
  /**
   * How many more tasks it could put to work at once if it had them (a thread pool keeps each
   * thread a little work ahead); Infinity if it starts whatever it is given. The dispatcher
   * claims ahead by this much, beyond its own measure of the finish rate.
   */
  room(): number;
  close(): Promise<void>;
}
