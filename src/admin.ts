/**
 * The admin API's inputs and outputs (status, list, retry, cancel) and their checks: a filter
 * or page request is checked whole before any SQL is built, so a mistake names itself instead
 * of selecting nothing (or everything).
 */
import { RhythmValidationError } from './errors.js';
import { checkDate, checkInt, checkKnownKeys, checkQueueName, checkStorableText, checkId, describe, MAX_DELAY_MS } from './validate.js';
import type { Selection } from './sql/select.js';
import type { Execution, ExecutionStatus } from './types.js';
import type { QueueReport } from './sql/status.js';

export type { QueueReport, TaskStatus, StatusCounts } from './sql/status.js';

/** Which executions list, retry and cancel apply to: every given criterion must match. */
export interface ExecutionFilter {
  queue?: string;
  /** Task name. */
  name?: string;
  /** One status or several. */
  status?: ExecutionStatus | readonly ExecutionStatus[];
  /** Created at or after this time. */
  since?: Date;
}

export interface ListOptions extends ExecutionFilter {
  /** Most executions per page (default 50, at most 1000). */
  limit?: number;
  /** Where to continue: the nextCursor of the previous page. */
  cursor?: string | null;
}

export interface ExecutionPage {
  /** Newest first. */
  items: Execution[];
  /** Pass as `cursor` for the next page; null when this page is the last. */
  nextCursor: string | null;
}

export interface StatusOptions {
  /** Completed, failed and cancelled counts cover this many milliseconds back (default 1 hour). */
  windowMs?: number;
}

export interface StatusReport {
  /** When the figures were read (the app's clock). */
  at: Date;
  windowMs: number;
  /** Queues with anything scheduled, queued or running, or finished within the window, by name. */
  queues: QueueReport[];
}

export interface RetryOptions {
  /** Attempts each retried execution may make from now on, at least (default 1). */
  attempts?: number;
}

/** An execution asked for by id that was left alone, and why: its status (null: there is none). */
export interface Skipped {
  id: string;
  status: ExecutionStatus | null;
}

export interface RetryResult {
  /** Executions queued again, in id order. */
  retried: string[];
  /** Ids given that were not failed or cancelled (completed, unfinished or missing). */
  skipped: Skipped[];
}

export interface CancelResult {
  /** Executions cancelled now, in id order. */
  cancelled: string[];
  /** Ids given that had already finished (or do not exist). */
  skipped: Skipped[];
}

export const STATUSES: readonly ExecutionStatus[] = ['scheduled', 'queued', 'running', 'completed', 'failed', 'cancelled'];
const FILTER_KEYS = ['queue', 'name', 'status', 'since'] as const;
const MAX_IDS = 100_000;
export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 1000;
/** Cursors are opaque to callers; inside, the last id of the page, versioned. */
const CURSOR_PREFIX = 'v1:';

/**
 * A filter for `what` (list, retry, cancel), with the statuses it may select: anything
 * outside `allowed` is refused by name rather than silently matching nothing.
 */
export function checkFilter(
  what: string,
  filter: ExecutionFilter,
  allowed: readonly ExecutionStatus[],
  extraKeys: readonly string[] = [],
): Selection {
  checkKnownKeys(what, filter, [...FILTER_KEYS, ...extraKeys]);
  const sel: Selection = {};
  if (filter.queue !== undefined) sel.queue = checkQueueName(filter.queue);
  if (filter.name !== undefined) {
    if (typeof filter.name !== 'string' || filter.name === '')
      throw new RhythmValidationError(`${what} option name must be a task name, got ${describe(filter.name)}`);
    checkStorableText('task name', filter.name);
    sel.name = filter.name;
  }
  if (filter.status !== undefined) {
    const list: unknown[] = Array.isArray(filter.status) ? filter.status : [filter.status];
    if (list.length === 0) throw new RhythmValidationError(`${what} option status must name at least one status (${allowed.join(', ')})`);
    for (const s of list) {
      if (!STATUSES.includes(s as ExecutionStatus)) {
        throw new RhythmValidationError(`${what} option status: unknown status ${describe(s)} (known: ${STATUSES.join(', ')})`);
      }
      if (!allowed.includes(s as ExecutionStatus)) {
        throw new RhythmValidationError(`${what} option status: ${describe(s)} cannot be selected here (allowed: ${allowed.join(', ')})`);
      }
    }
    sel.statuses = [...new Set(list as ExecutionStatus[])];
  }
  if (filter.since !== undefined) {
    sel.since = checkDate('since', filter.since);
    if (sel.since!.getTime() > Date.now() + MAX_DELAY_MS)
      throw new RhythmValidationError(`option since is too far in the future: ${sel.since!.toISOString()}`);
  }
  return sel;
}

/** The target of retry or cancel: an array of ids, or a filter with at least one criterion. */
export function checkTarget(what: string, target: unknown, allowed: readonly ExecutionStatus[]): Selection {
  if (Array.isArray(target)) {
    if (target.length === 0) throw new RhythmValidationError(`${what} needs at least one id (got an empty array)`);
    if (target.length > MAX_IDS)
      throw new RhythmValidationError(
        `${what} takes at most ${MAX_IDS.toLocaleString('en-US')} ids at once, got ${target.length.toLocaleString('en-US')}`,
      );
    for (let i = 0; i < target.length; i++) {
      if (!(i in target)) throw new RhythmValidationError(`${what} id ${i} is missing (the array has a hole there)`);
      checkId(target[i]);
    }
    return { ids: [...new Set(target as string[])] };
  }
  if (target === null || typeof target !== 'object') {
    throw new RhythmValidationError(
      `${what} expects an array of execution ids or a filter object ({ queue, name, status, since }), got ${describe(target)}`,
    );
  }
  const sel = checkFilter(what, target as ExecutionFilter, allowed);
  if (Object.keys(sel).length === 0) {
    // An empty filter would act on every execution: say so instead of doing it.
    throw new RhythmValidationError(
      `${what} filter must give at least one of queue, name, status or since (to act on all of them, name the statuses: { status: [${allowed.map((s) => `'${s}'`).join(', ')}] })`,
    );
  }
  return sel;
}

export function checkListOptions(options: ListOptions): { sel: Selection; limit: number } {
  const sel = checkFilter('list', options, STATUSES, ['limit', 'cursor']);
  const limit = checkInt('limit', options.limit, 1, MAX_LIMIT) ?? DEFAULT_LIMIT;
  if (options.cursor !== undefined && options.cursor !== null) sel.beforeId = decodeCursor(options.cursor);
  return { sel, limit };
}

export function encodeCursor(lastId: string): string {
  return Buffer.from(CURSOR_PREFIX + lastId, 'utf8').toString('base64url');
}

function decodeCursor(cursor: unknown): string {
  const bad = () => new RhythmValidationError(`invalid cursor ${describe(cursor)}: pass the nextCursor of a previous list() page as it is`);
  if (typeof cursor !== 'string' || cursor.length === 0 || cursor.length > 64 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw bad();
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!text.startsWith(CURSOR_PREFIX)) throw bad();
  const id = text.slice(CURSOR_PREFIX.length);
  try {
    checkId(id);
  } catch {
    throw bad();
  }
  return id;
}

export function checkRetryOptions(options: RetryOptions): number {
  checkKnownKeys('retry', options, ['attempts']);
  return checkInt('attempts', options.attempts, 1, 1_000_000) ?? 1;
}

export function checkStatusOptions(options: StatusOptions): number {
  checkKnownKeys('status', options, ['windowMs']);
  return checkInt('windowMs', options.windowMs, 1, MAX_DELAY_MS) ?? 3_600_000;
}

export type { QueueActivity, MinuteCounts } from './sql/queue-activity.js';
export type { WorkflowSummary } from './sql/workflow-list.js';

export interface ActivityOptions {
  /** How far back the figures go, in milliseconds (default 1 hour, at most 1 day). */
  windowMs?: number;
}

export interface WorkflowListOptions {
  /** Most workflows per page (default 50, at most 1000). */
  limit?: number;
  /** The nextCursor of the previous page. */
  cursor?: string | null;
}

export interface WorkflowPage {
  /** Newest first. */
  items: import('./sql/workflow-list.js').WorkflowSummary[];
  nextCursor: string | null;
}

export function checkActivityOptions(options: ActivityOptions): number {
  checkKnownKeys('queueActivity', options, ['windowMs']);
  // Per-minute buckets beyond a day would be more points than a chart can show usefully.
  return checkInt('windowMs', options.windowMs, 60_000, 86_400_000) ?? 3_600_000;
}

export function checkWorkflowListOptions(options: WorkflowListOptions): { beforeId: string | null; limit: number } {
  checkKnownKeys('listWorkflows', options, ['limit', 'cursor']);
  const limit = checkInt('limit', options.limit, 1, MAX_LIMIT) ?? DEFAULT_LIMIT;
  const beforeId = options.cursor === undefined || options.cursor === null ? null : decodeCursor(options.cursor);
  return { beforeId, limit };
}
