/**
 * Which executions an admin statement (list, cancel, retry) applies to, as SQL. Filters become
 * parameterised conditions; only table names from SchemaNames are interpolated.
 *
 * Each selection reads from the smallest table that holds every candidate: unfinished
 * statuses from the queue tables (work_queue, scheduled_queue), failed and cancelled from
 * dead_letters, anything else from the history by id, newest first. So a page of failed
 * executions costs what the failures number, not what the history holds.
 */
import type { SchemaNames } from '../db/schema.js';
import type { ExecutionStatus } from '../types.js';

/** A checked selection: every given criterion must match. */
export interface Selection {
  ids?: string[];
  queue?: string;
  name?: string;
  statuses?: ExecutionStatus[];
  /** Created at or after this time. */
  since?: Date;
  /** Only ids below this one (keyset pagination, newest first). */
  beforeId?: string;
}

/** Query parameters collected while the SQL is built. */
export class Params {
  readonly values: unknown[] = [];
  add(value: unknown, type: string): string {
    this.values.push(value);
    return `$${this.values.length}::${type}`;
  }
}

const LIVE: readonly ExecutionStatus[] = ['scheduled', 'queued', 'running'];
const DEAD: readonly ExecutionStatus[] = ['failed', 'cancelled'];

/** The public status of `e` with its work_queue row `w`. */
const PUBLIC_STATUS = `CASE WHEN e.status = 'queued' AND w.claimed_until IS NOT NULL THEN 'running' ELSE e.status END`;

/** Conditions on `e` (executions) and `w` (its work_queue row), joined by AND. */
function conditions(sel: Selection, p: Params): string {
  const c: string[] = [];
  if (sel.ids) c.push(`e.id = ANY(${p.add(sel.ids, 'bigint[]')})`);
  if (sel.beforeId) c.push(`e.id < ${p.add(sel.beforeId, 'bigint')}`);
  if (sel.queue !== undefined) c.push(`e.queue = ${p.add(sel.queue, 'text')}`);
  if (sel.name !== undefined) c.push(`e.name = ${p.add(sel.name, 'text')}`);
  if (sel.since) c.push(`e.created_at >= ${p.add(sel.since, 'timestamptz')}`);
  if (sel.statuses) {
    // The stored status ("running" is stored as queued), then the public one where they differ.
    const stored = [...new Set(sel.statuses.map((s) => (s === 'running' ? 'queued' : s)))];
    c.push(`e.status = ANY(${p.add(stored, 'text[]')})`);
    if (sel.statuses.includes('queued') !== sel.statuses.includes('running')) {
      c.push(`${PUBLIC_STATUS} = ANY(${p.add(sel.statuses, 'text[]')})`);
    }
  }
  return c.length === 0 ? 'true' : c.join(' AND ');
}

/**
 * SQL yielding the `id` of every selected execution; with `limit`, the newest `limit` of them
 * in descending order.
 *
 * A small source table is read by its primary key from the top, and each of its rows looks up
 * its execution (a LATERAL subquery that OFFSET 0 keeps from being flattened): otherwise the
 * planner may prefer to walk the whole history in id order to merge it with the small table.
 */
export function selectIds(n: SchemaNames, sel: Selection, p: Params, limit?: number): string {
  const statuses = sel.statuses;
  const limitParam = limit === undefined ? undefined : p.add(limit, 'int');
  const newest = (col: string) => (limitParam === undefined ? '' : ` ORDER BY ${col} DESC LIMIT ${limitParam}`);
  const lookup = (source: string, s: Selection) =>
    `CROSS JOIN LATERAL (SELECT 1 FROM ${n.executions} e WHERE e.id = ${source} AND ${conditions(s, p)} OFFSET 0) found`;
  const bounds = (col: string): string[] => [
    ...(sel.ids ? [`${col} = ANY(${p.add(sel.ids, 'bigint[]')})`] : []),
    ...(sel.beforeId ? [`${col} < ${p.add(sel.beforeId, 'bigint')}`] : []),
  ];
  if (statuses?.every((s) => LIVE.includes(s))) {
    const parts: string[] = [];
    const ready = statuses.filter((s) => s !== 'scheduled');
    if (ready.length > 0) {
      const onWork = bounds('w.execution_id');
      if (sel.queue !== undefined) onWork.push(`w.queue = ${p.add(sel.queue, 'text')}`);
      if (sel.name !== undefined) onWork.push(`w.name = ${p.add(sel.name, 'text')}`);
      if (!ready.includes('running')) onWork.push('w.claimed_until IS NULL');
      if (!ready.includes('queued')) onWork.push('w.claimed_until IS NOT NULL');
      parts.push(`(SELECT w.execution_id AS id FROM ${n.workQueue} w ${lookup('w.execution_id', { ...sel, statuses: ready })}
        WHERE ${onWork.length ? onWork.join(' AND ') : 'true'}${newest('w.execution_id')})`);
    }
    if (statuses.includes('scheduled')) {
      const onScheduled = bounds('s.execution_id');
      parts.push(`(SELECT s.execution_id AS id FROM ${n.scheduledQueue} s ${lookup('s.execution_id', { ...sel, statuses: ['scheduled'] })}
        WHERE ${onScheduled.length ? onScheduled.join(' AND ') : 'true'}${newest('s.execution_id')})`);
    }
    // Each part reads at most its own newest page; the page is the newest of those.
    return `SELECT id FROM (${parts.join(' UNION ALL ')}) live${newest('id')}`;
  }
  if (statuses?.every((s) => DEAD.includes(s))) {
    const onDead = [...bounds('d.execution_id'), `d.status = ANY(${p.add(statuses, 'text[]')})`];
    if (sel.queue !== undefined) onDead.push(`d.queue = ${p.add(sel.queue, 'text')}`);
    if (sel.name !== undefined) onDead.push(`d.name = ${p.add(sel.name, 'text')}`);
    if (sel.since) onDead.push(`d.created_at >= ${p.add(sel.since, 'timestamptz')}`);
    return `SELECT d.execution_id AS id FROM ${n.deadLetters} d ${lookup('d.execution_id', sel)}
      WHERE ${onDead.join(' AND ')}${newest('d.execution_id')}`;
  }
  return `SELECT e.id FROM ${n.executions} e LEFT JOIN ${n.workQueue} w ON w.execution_id = e.id
    WHERE ${conditions(sel, p)}${newest('e.id')}`;
}

/**
 * Rows (id, done = false, status) for each of `ids` not in the CTE `done`, in input order:
 * what an admin statement reports as skipped (status null: no such execution).
 */
export function skippedIds(n: SchemaNames, ids: string[], p: Params, done: string): string {
  return `(SELECT i.id::text, false, ${PUBLIC_STATUS}
  FROM unnest(${p.add(ids, 'bigint[]')}) WITH ORDINALITY AS i(id, ord)
  LEFT JOIN ${n.executions} e ON e.id = i.id
  LEFT JOIN ${n.workQueue} w ON w.execution_id = i.id
  WHERE i.id NOT IN (SELECT id FROM ${done})
  ORDER BY i.ord)`;
}
