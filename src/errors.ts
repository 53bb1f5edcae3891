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
