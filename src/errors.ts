import { inspect } from 'node:util';
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
  constructor(
    readonly reason: AbortReason,
    message: string,
  ) {
    super(message);
    this.name = reason === 'timeout' ? 'TaskTimeoutError' : 'TaskAbortedError';
  }
}

/** Why a running task was asked to stop. */
export type AbortReason = 'cancelled' | 'timeout' | 'shutdown' | 'lease-lost';

/*
 * The errors Rhythm records on executions. Their names are stored in the history (the `error`
 * column and the attempt log), so they are part of the API: each class fixes its name, and a
 * minifier renaming the class, or a subclass, does not change what is stored.
 */

/** Stored on an execution cancelled by `cancel()` (and on the attempt it interrupted). */
export class CancelledError extends RhythmError {
  override name = 'CancelledError';
}

/** Stored when the worker running an attempt stopped renewing its lease (died, hung, lost its connection). */
export class LeaseExpiredError extends RhythmError {
  override name = 'LeaseExpiredError';
}

/** Stored when the thread running an attempt died under it (a crash, process.exit, resource limits). */
export class ThreadCrashError extends RhythmError {
  override name = 'ThreadCrashError';
}

/** Stored when a thread task's module cannot be imported or exports no handler. */
export class ModuleLoadError extends RhythmError {
  override name = 'ModuleLoadError';
}

/** Stored when the database refused an attempt's outcome (e.g. a result too large for jsonb). */
export class ResultRejectedError extends RhythmError {
  override name = 'ResultRejectedError';
}

/**
 * Throw this from a handler to fail the execution at once, without further retries. A subclass
 * keeps the name NonRetryableError unless it sets its own; either way it is not retried.
 */
export class NonRetryableError extends RhythmError {
  override name = 'NonRetryableError';
}

/** Whether a thrown value asks not to be retried (by class, or by name across module copies). */
export function isNonRetryable(err: unknown, recordedName: string): boolean {
  try {
    if (err instanceof NonRetryableError) return true;
  } catch {
    // A hostile Proxy may refuse instanceof: fall back on the recorded name.
  }
  return recordedName === 'NonRetryableError';
}

/** The stored form of an error Rhythm raises itself: name and message (its stack says nothing useful). */
export function systemErrorJson(err: RhythmError): string {
  return JSON.stringify({ name: err.name, message: err.message });
}

/** Longest message or stack stored for one attempt; longer ones are cut (and say so). */
const MAX_ERROR_TEXT = 64 * 1024;

/**
 * How a failed attempt is recorded on the execution (`error` column). Total: whatever a
 * handler throws (an Error whose getters throw, a non-JSON message, a hostile Proxy, a value
 * without a prototype) gives a record, because a record that could not be made would leave
 * the attempt unsettled. What cannot be read is recorded as such.
 */
export function toErrorRecord(err: unknown): TaskErrorInfo {
  let isError: boolean;
  try {
    isError = err instanceof Error;
  } catch {
    return { name: 'NonErrorThrown', message: 'handler threw a value that could not be read (a Proxy that refuses inspection?)' };
  }
  if (isError) {
    const e = err as Error;
    const name = readText(() => e.name, 'its name');
    const stack = readText(() => e.stack, 'its stack');
    return {
      name: name === undefined || name === '' ? 'Error' : name,
      message: readText(() => e.message, 'its message') ?? '',
      ...(stack === undefined ? {} : { stack }),
    };
  }
  return { name: 'NonErrorThrown', message: `handler threw a non-Error value: ${readText(() => err, 'it') ?? 'undefined'}` };
}

/** A property as storable text: strings as they are, anything else described; never throws. */
function readText(get: () => unknown, what: string): string | undefined {
  let v: unknown;
  try {
    v = get();
  } catch (e) {
    return `(${what} could not be read: ${safeDescription(e)})`;
  }
  if (v === undefined) return undefined;
  let text: string;
  if (typeof v === 'string') {
    text = v;
  } else {
    try {
      text = JSON.stringify(v) ?? describeValue(v);
    } catch {
      text = describeValue(v);
    }
  }
  // jsonb stores neither NUL nor half a surrogate pair.
  text = text.toWellFormed().replaceAll('\u0000', '\uFFFD');
  return text.length > MAX_ERROR_TEXT ? `${text.slice(0, MAX_ERROR_TEXT)}... (${text.length - MAX_ERROR_TEXT} more characters cut)` : text;
}

function describeValue(v: unknown): string {
  try {
    return inspect(v, { depth: 3, breakLength: Infinity, maxStringLength: MAX_ERROR_TEXT, customInspect: false });
  } catch {
    return Object.prototype.toString.call(v);
  }
}

function safeDescription(e: unknown): string {
  try {
    return e instanceof Error ? String(e.message) : describeValue(e);
  } catch {
    return 'unreadable';
  }
}
