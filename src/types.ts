/** The public types of Rhythm's API. */
import type pg from 'pg';
import type { TaskDefinition } from './task-definition.js';

export type ExecutionStatus = 'scheduled' | 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

/** What a handler receives besides its payload, on the main thread and on threads alike. */
export interface TaskContext {
  /** Execution id (a bigint, as a string). */
  readonly id: string;
  readonly name: string;
  readonly queue: string;
  /** 1 on the first attempt. */
  readonly attempt: number;
  /** Aborts when the execution is cancelled, times out, or the worker shuts down. */
  readonly signal: AbortSignal;
  /** True once cancellation was requested; cheap enough to read inside a hot loop. */
  readonly cancelled: boolean;
  /** Throws the abort reason if cancellation was requested. */
  throwIfCancelled(): void;
  /** Asks the worker to extend this execution's lease now (leases are also extended periodically). */
  heartbeat(): void;
  /**
   * Records how far the handler got (any JSON value), visible in `rhythm.get(id).progress`
   * while it runs. Only the latest value counts; writes are batched (about every 250 ms), so
   * calling it often costs no statement each. Throws RhythmValidationError if not JSON.
   */
  progress(value: unknown): void;
}

// biome-ignore lint/suspicious/noExplicitAny: an untyped handler takes and returns whatever its task's JSON holds; unknown would force a cast in every plain-JS-style handler.
export type TaskHandler<P = any, R = any> = (payload: P, ctx: TaskContext) => R | Promise<R>;

export interface EnqueueOptions {
  /** Queue name (default "default"). */
  queue?: string;
  /** Run no earlier than this many milliseconds from now. */
  delayMs?: number;
  /** Run no earlier than this time (exclusive with delayMs). */
  runAt?: Date;
  /** Higher runs first (default 0). */
  priority?: number;
  /** Attempts before the execution is failed (default 3). */
  maxAttempts?: number;
  /** Per-attempt time limit; on expiry the attempt fails and is retried. */
  timeoutMs?: number;
  /** Lease (visibility timeout) for this task, overriding the worker's. */
  visibilityTimeoutMs?: number;
  /**
   * Group for group concurrency (a tenant, a user...): a Worker with `groupConcurrency: n`
   * runs at most n executions of one group at once, across every process.
   */
  group?: string;
  /** Retry delay after a failed attempt of this execution (default: the Rhythm's retryBackoff). */
  backoff?: { baseMs?: number; maxMs?: number };
  /**
   * Deduplication key: while an execution with this key is unfinished (scheduled, queued or
   * running), enqueue returns its id instead of creating another one.
   */
  uniqueKey?: string;
  /**
   * What to do when an unfinished execution has the uniqueKey: 'keep' it unchanged (default),
   * or 'replace' its payload and run time if it has not started yet (a running one is kept).
   */
  uniqueMode?: UniqueMode;
  /** Run the INSERT on this client, e.g. inside the caller's own transaction. */
  client?: pg.ClientBase;
}

export type UniqueMode = 'keep' | 'replace';

export interface StartWorkflowOptions {
  /** Queue whose workers run the workflow's activations (default "default"); its tasks default to it too. */
  queue?: string;
  /** Higher runs first (default 0). */
  priority?: number;
  /** Insert on this client, e.g. inside the caller's own transaction. */
  client?: pg.ClientBase;
}

/** Options of `wait()` and `waitMany()`. */
export interface WaitOptions {
  /**
   * Most time to wait, counted from the call (default 60 s): then the call rejects with
   * WaitTimeoutError, whatever the database is doing. 0 reads once and does not wait.
   */
  timeoutMs?: number;
}

export interface EnqueueItem {
  /** A task name, or a task definition (defineTask) whose defaults apply. */
  // biome-ignore lint/suspicious/noExplicitAny: a batch mixes definitions of any payload and result types.
  name: string | TaskDefinition<any, any>;
  payload: unknown;
  /** enqueue()'s options, uniqueKey and uniqueMode included; the client goes to enqueueMany itself. */
  options?: Omit<EnqueueOptions, 'client'>;
}

export interface TaskErrorInfo {
  name: string;
  message: string;
  stack?: string;
}

/** One attempt that did not succeed, as kept in an execution's attempt log. */
export interface AttemptRecord {
  /** 1 for the first attempt; attempt numbers keep counting across retries. */
  attempt: number;
  startedAt: Date | null;
  finishedAt: Date;
  /** The worker that ran it (null when unknown). */
  workerId: string | null;
  /** failed: it threw, timed out, crashed or lost its lease; cancelled: cancel() stopped it while running. */
  outcome: 'failed' | 'cancelled';
  error: TaskErrorInfo | null;
}

export interface Execution<R = unknown, P = unknown> {
  id: string;
  kind: 'task' | 'workflow';
  name: string;
  queue: string;
  status: ExecutionStatus;
  payload: P;
  result: R | null;
  error: TaskErrorInfo | null;
  priority: number;
  attempts: number;
  maxAttempts: number;
  parentId: string | null;
  /** The group given at enqueue (null: none). */
  group: string | null;
  createdAt: Date;
  runAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** Attempts that failed or were cancelled while running, oldest first (the last 50); empty if none. */
  attemptLog: AttemptRecord[];
  /** The latest ctx.progress() value of its handler (null if it reported none). */
  progress: unknown;
}
