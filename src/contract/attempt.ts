/**
 * Turning handler outcomes into AttemptResults; shared by the main-thread executor and the
 * thread-side runner so an error looks the same wherever the task ran.
 */
import { encodeJson } from '../json.js';
import { TaskAbortedError, isNonRetryable, toErrorRecord, type AbortReason } from '../errors.js';
import type { AttemptResult } from './executor.js';

export function succeeded(value: unknown): AttemptResult {
  // A handler that returns nothing succeeded: its result is stored as null.
  if (value === undefined) return { ok: true, resultJson: 'null' };
  try {
    return { ok: true, resultJson: encodeJson(value, 'handler result') };
  } catch (err) {
    // A result that cannot be stored fails the attempt for good: running again would not help.
    return failed(err, false);
  }
}

/** Never throws, whatever was thrown (see toErrorRecord): a failure must always be recordable. */
export function failed(err: unknown, retryable?: boolean): AttemptResult {
  const record = toErrorRecord(err);
  return { ok: false, errorJson: JSON.stringify(record), retryable: retryable ?? !isNonRetryable(err, record.name) };
}

const ABORT_MESSAGES: Record<AbortReason, string> = {
  cancelled: 'the execution was cancelled',
  timeout: 'the attempt exceeded its timeoutMs',
  shutdown: 'the worker is shutting down',
  'lease-lost': 'the lease on this execution was lost (it expired or the execution was cancelled)',
};

export function abortError(reason: AbortReason, detail?: string): TaskAbortedError {
  return new TaskAbortedError(reason, detail ? `${ABORT_MESSAGES[reason]} (${detail})` : ABORT_MESSAGES[reason]);
}

/** Abort reasons as small integers, for the shared-memory flags read by threads. */
export const ABORT_CODES: Record<AbortReason, number> = { cancelled: 1, timeout: 2, shutdown: 3, 'lease-lost': 4 };
export const ABORT_REASONS: Record<number, AbortReason> = Object.fromEntries(
  Object.entries(ABORT_CODES).map(([reason, code]) => [code, reason as AbortReason]),
);
