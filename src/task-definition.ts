/**
 * Typed tasks: a definition names a task, carries its payload and result types (for the
 * compiler only) and holds per-task enqueue defaults. Passing the definition instead of a name
 * to enqueue, Worker.task, wait and schedule makes a wrong payload or handler a compile error,
 * and keeps the queue, attempts, backoff and timeout of a task in one place.
 */
import { RhythmValidationError } from './errors.js';
import { checkInt, checkKnownKeys, checkQueueName, checkTaskName, describe } from './validate.js';

declare const payloadType: unique symbol;
declare const resultType: unique symbol;
const MARK = Symbol.for('rhythm.taskDefinition');

/** Options every enqueue of a task gets unless the enqueue gives its own. */
export interface TaskDefaults {
  /** Queue of the task (default "default"); a Worker serving another queue refuses it. */
  queue?: string;
  maxAttempts?: number;
  /** Retry delay after a failed attempt (default: the Rhythm's retryBackoff). */
  backoff?: { baseMs?: number; maxMs?: number };
  timeoutMs?: number;
  priority?: number;
  visibilityTimeoutMs?: number;
}

export interface TaskDefinition<P = unknown, R = unknown> {
  readonly name: string;
  readonly defaults: Readonly<TaskDefaults>;
  /** Type-only markers (never present at run time): they carry P and R to the compiler. */
  readonly [payloadType]?: (payload: P) => P;
  readonly [resultType]?: () => R;
}

/**
 * An execution id returned by enqueue(definition, ...): a string that also remembers the
 * task's types, so wait() and get() return Execution<R, P>.
 */
export type TaskExecutionId<R = unknown, P = unknown> = string & {
  readonly [resultType]: R;
  readonly [payloadType]: P;
};

const DEFAULT_KEYS = ['queue', 'maxAttempts', 'backoff', 'timeoutMs', 'priority', 'visibilityTimeoutMs'] as const;

/** Defines a task with its payload type P, result type R and enqueue defaults. */
export function defineTask<P = unknown, R = unknown>(name: string, defaults: TaskDefaults = {}): TaskDefinition<P, R> {
  checkTaskName(name);
  checkKnownKeys(`defineTask(${JSON.stringify(name)})`, defaults, DEFAULT_KEYS);
  if (defaults.queue !== undefined) checkQueueName(defaults.queue);
  checkInt('maxAttempts', defaults.maxAttempts, 1);
  checkInt('timeoutMs', defaults.timeoutMs, 1);
  checkInt('priority', defaults.priority, -2_147_483_648);
  checkInt('visibilityTimeoutMs', defaults.visibilityTimeoutMs, 1_000);
  checkBackoff('backoff', defaults.backoff);
  const def = {
    name,
    defaults: Object.freeze({ ...defaults, ...(defaults.backoff ? { backoff: Object.freeze({ ...defaults.backoff }) } : {}) }),
  };
  Object.defineProperty(def, MARK, { value: true });
  return Object.freeze(def) as TaskDefinition<P, R>;
}

export function isTaskDefinition(value: unknown): value is TaskDefinition {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[MARK] === true;
}

/** A backoff option: base and max delays in ms, base not above max. Returns the pair (or nulls). */
export function checkBackoff(option: string, backoff: unknown): { baseMs: number | null; maxMs: number | null } {
  if (backoff === undefined) return { baseMs: null, maxMs: null };
  if (backoff === null || typeof backoff !== 'object')
    throw new RhythmValidationError(`option ${option} must be { baseMs, maxMs }, got ${describe(backoff)}`);
  checkKnownKeys(option, backoff, ['baseMs', 'maxMs']);
  const b = backoff as { baseMs?: unknown; maxMs?: unknown };
  const baseMs = checkInt(`${option}.baseMs`, b.baseMs, 0) ?? null;
  const maxMs = checkInt(`${option}.maxMs`, b.maxMs, 0) ?? null;
  if (baseMs !== null && maxMs !== null && baseMs > maxMs) {
    throw new RhythmValidationError(`option ${option}.baseMs (${baseMs}) must not exceed ${option}.maxMs (${maxMs})`);
  }
  return { baseMs, maxMs };
}
