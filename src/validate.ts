/**
 * Checks of caller input. Each function throws a RhythmValidationError that names the
 * offending option and value, so a mistake is found at the call, not later in a worker.
 */
import { RhythmValidationError } from './errors.js';

const QUEUE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/;
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,39}$/;
const MAX_TASK_NAME = 200;
const INT32_MAX = 2_147_483_647;
const ID = /^[1-9]\d{0,18}$/;
const BIGINT_MAX = 9_223_372_036_854_775_807n;
/** Delays up to a hundred years (run_at is computed in SQL from a bigint). */
export const MAX_DELAY_MS = 100 * 365 * 24 * 3600_000;

export function checkTaskName(name: unknown): string {
  if (typeof name !== 'string') throw new RhythmValidationError(`task name must be a string, got ${describe(name)}`);
  if (name.trim() === '') throw new RhythmValidationError('task name must not be empty');
  if (name.length > MAX_TASK_NAME)
    throw new RhythmValidationError(`task name is longer than ${MAX_TASK_NAME} characters: ${name.slice(0, 40)}...`);
  checkStorableText('task name', name);
  return name;
}

/** Workflow and signal names follow the rules of task names. */
export function checkFlowName(what: 'workflow name' | 'signal name', name: unknown): string {
  if (typeof name !== 'string') throw new RhythmValidationError(`${what} must be a string, got ${describe(name)}`);
  if (name.trim() === '') throw new RhythmValidationError(`${what} must not be empty`);
  if (name.length > MAX_TASK_NAME)
    throw new RhythmValidationError(`${what} is longer than ${MAX_TASK_NAME} characters: ${name.slice(0, 40)}...`);
  checkStorableText(what, name);
  return name;
}

/**
 * Text Postgres stores as given: no NUL character (text columns refuse it) and no lone UTF-16
 * surrogate (stored as U+FFFD, so it would no longer match what the caller gave).
 */
export function checkStorableText(what: string, text: string): void {
  if (text.includes('\u0000'))
    throw new RhythmValidationError(`${what} ${JSON.stringify(text)} contains a NUL character (\\u0000), which Postgres cannot store`);
  if (!text.isWellFormed()) {
    throw new RhythmValidationError(
      `${what} ${JSON.stringify(text)} contains a lone UTF-16 surrogate (half of a character pair), which is not valid Unicode`,
    );
  }
}

/** An execution id: a positive bigint, as a string. */
export function checkId(id: unknown): asserts id is string {
  // Only a 19-digit id can exceed a bigint (waits check ids by the thousand: no BigInt for the others).
  if (typeof id !== 'string' || !ID.test(id) || (id.length === 19 && BigInt(id) > BIGINT_MAX)) {
    throw new RhythmValidationError(`invalid execution id ${describe(id)}: ids are positive integers, given as strings`);
  }
}

const MAX_GROUP = 200;

/** A group for group concurrency; undefined passes through. */
export function checkGroup(group: unknown): string | undefined {
  if (group === undefined) return undefined;
  if (typeof group !== 'string' || group === '' || group.length > MAX_GROUP) {
    throw new RhythmValidationError(`option group must be a non-empty string of at most ${MAX_GROUP} characters, got ${describe(group)}`);
  }
  checkStorableText('option group', group);
  return group;
}

/** A rate limit { max, intervalMs }, or null (none). */
export function checkRateLimit(limit: unknown): { max: number; intervalMs: number } | null {
  if (limit === null) return null;
  if (limit === undefined) throw new RhythmValidationError('setRateLimit needs a limit { max, intervalMs }, or null to remove it');
  checkKnownKeys('rate limit', limit, ['max', 'intervalMs']);
  const { max, intervalMs } = limit as { max?: unknown; intervalMs?: unknown };
  if (max === undefined) throw new RhythmValidationError('rate limit max is missing: give the most starts per interval (an integer >= 1)');
  if (intervalMs === undefined)
    throw new RhythmValidationError('rate limit intervalMs is missing: give the interval in milliseconds (an integer >= 1)');
  return { max: checkInt('rate limit max', max, 1)!, intervalMs: checkInt('rate limit intervalMs', intervalMs, 1)! };
}

/** A boolean option; undefined passes through. */
export function checkBool(option: string, value: unknown): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value;
  throw new RhythmValidationError(`option ${option} must be true or false, got ${describe(value)}`);
}

/** Postgres timestamps run from 4713 BC to 294276 AD; JavaScript dates reach further back. */
const PG_MIN_TIME = Date.UTC(-4713, 10, 24);

export function checkQueueName(queue: unknown): string {
  if (typeof queue !== 'string' || !QUEUE_NAME.test(queue)) {
    throw new RhythmValidationError(
      `invalid queue name ${describe(queue)}: use 1-100 letters, digits, '_', '.', ':' or '-', starting with a letter or digit`,
    );
  }
  return queue;
}

/** Schema names are interpolated into SQL and channel names, so they are held to a strict form. */
export function checkSchemaName(schema: unknown): string {
  if (typeof schema !== 'string' || !SCHEMA_NAME.test(schema)) {
    throw new RhythmValidationError(
      `invalid schema name ${describe(schema)}: use 1-40 lowercase letters, digits or '_', not starting with a digit`,
    );
  }
  return schema;
}

/** An integer option within [min, max]; undefined passes through. */
export function checkInt(option: string, value: unknown, min: number, max = INT32_MAX): number | undefined {
  return value === undefined ? undefined : checkInteger(`option ${option}`, value, min, max);
}

const INTEGER_TEXT = /^[+-]?\d+$/;

/**
 * The one integer check: a number within [min, max], or with `text` also its decimal digits
 * as a string (how a flag or an environment variable gives it). `where` names the value.
 */
export function checkInteger(where: string, value: unknown, min: number, max = INT32_MAX, text = false): number {
  const n =
    typeof value === 'number'
      ? value
      : text && typeof value === 'string' && INTEGER_TEXT.test(value.trim())
        ? Number(value.trim())
        : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    // Name the maximum when it is a real bound here, or when it was exceeded.
    const tooBig = typeof value === 'number' && value > max;
    const range = max >= INT32_MAX && !tooBig ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    throw new RhythmValidationError(`${where} must be ${range}, got ${describe(value)}`);
  }
  return n;
}

export function checkDate(option: string, value: unknown): Date | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new RhythmValidationError(`option ${option} must be a valid Date, got ${describe(value)}`);
  }
  if (value.getTime() < PG_MIN_TIME) {
    throw new RhythmValidationError(`option ${option} is ${value.toISOString()}, before the earliest time Postgres can store (4713 BC)`);
  }
  return value;
}

/**
 * Rejects an options argument that is not an object (null, a string, an array), and options
 * the caller misspelled, which would otherwise be ignored silently.
 */
export function checkKnownKeys(what: string, options: unknown, known: readonly string[]): void {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new RhythmValidationError(`${what} options must be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new RhythmValidationError(`unknown ${what} option ${JSON.stringify(key)} (known: ${known.join(', ')})`);
    }
  }
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Date) return `Date(${value.toString()})`;
  if (value === null || typeof value !== 'object') return String(value);
  return Object.prototype.toString.call(value);
}

/** A postgres:// URL; the value itself is never echoed, as it may hold a password. */
export function checkDatabaseUrl(where: string, url: unknown): asserts url is string {
  if (typeof url !== 'string' || url.trim() === '') {
    throw new RhythmValidationError(
      `${where} must be a postgres:// URL string, got ${typeof url === 'string' ? 'an empty string' : describe(url)}`,
    );
  }
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw new RhythmValidationError(`${where} is not a valid URL (expected postgres://user:password@host:port/database)`);
  }
  if (!['postgres:', 'postgresql:', 'socket:'].includes(protocol)) {
    throw new RhythmValidationError(
      `${where} must be a postgres:// or postgresql:// URL, got one starting with ${JSON.stringify(protocol)}`,
    );
  }
}
