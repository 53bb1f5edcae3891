import type { TaskErrorInfo } from './types.js';

/**
 * Error types users can catch, and the shape a task error takes in the history.
 * Bad input always throws a RhythmValidationError naming the problem, before anything is written.
 */

export class RhythmError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Invalid input from the caller: a bad name, option, payload or registration. */
export class RhythmValidationError extends RhythmError {}

/** Thrown by `wait()` when its timeout passes before the execution settles. */
export class WaitTimeoutError extends RhythmError {}

/** Raised inside a handler (via ctx.signal.reason or throwIfCancelled) when its run is aborted. */
export class TaskAbortedError extends Error {
  constructor(readonly reason: AbortReason, message: string) {
    super(message);
    this.name = reason === 'timeout' ? 'TaskTimeoutError' : 'TaskAbortedError';
  }
}

/** Why a running task was asked to stop. */
export type AbortReason = 'cancelled' | 'timeout' | 'shutdown' | 'lease-lost';

/** Throw this from a handler to fail the execution at once, without further retries. */
export class NonRetryableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'NonRetryableError';
  }
}

/** How a failed attempt is recorded on the execution (`error` column). */
export function toErrorRecord(err: unknown): TaskErrorInfo {
  if (err instanceof Error) {
    return { name: err.name || 'Error', message: err.message, stack: err.stack };
  }
  let message: string;
  try {
    message = typeof err === 'string' ? err : JSON.stringify(err) ?? String(err);
  } catch {
    message = String(err);
  }
  return { name: 'NonErrorThrown', message: `handler threw a non-Error value: ${message}` };
}
