/**
 * Enqueue with a deduplication key. The partial unique index on executions.unfinished_key
 * (migration 005) holds at most one unfinished execution per key, so producers racing on one
 * key get one execution: the losers' INSERT does nothing and they return the winner's id.
 * 'replace' then rewrites the winner's payload and run time, but only while it has never
 * started (no attempt made, not claimed); a running or retrying one is left alone, and a
 * replaced one keeps its group.
 */
import { RhythmError } from '../errors.js';
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';
import { enqueueKeyedRows, routeInserted, type EnqueueRow } from './enqueue.js';
import type { UniqueMode } from '../types.js';

const insertStatement = statement(
  'enqueue_unique',
  (n) => `
WITH input AS (
  SELECT $1::text AS name, $2::text AS queue, $3::jsonb AS payload, $4::int AS priority, $5::int AS max_attempts,
         $6::int AS timeout_ms, $7::int AS lease_ms,
         coalesce($9::timestamptz, now() + $8::bigint * interval '1 millisecond', now()) AS run_at,
         $10::int AS backoff_base_ms, $11::int AS backoff_max_ms, $12::text AS unique_key, $13::text AS group_key,
         $14::jsonb AS trace_context
), inserted AS (
  INSERT INTO ${n.executions} (name, queue, status, payload, payload_bytes, priority, max_attempts, timeout_ms, lease_ms, run_at,
                               backoff_base_ms, backoff_max_ms, unique_key, group_key, trace_context)
  SELECT name, queue, CASE WHEN run_at > now() THEN 'scheduled' ELSE 'queued' END, payload, pg_column_size(payload),
         priority, max_attempts, timeout_ms, lease_ms, run_at, backoff_base_ms, backoff_max_ms, unique_key, group_key, trace_context
  FROM input
  ON CONFLICT (unfinished_key) WHERE unfinished_key IS NOT NULL DO NOTHING
  RETURNING id, name, queue, status, priority, lease_ms, run_at, payload_bytes, group_key
${routeInserted(n)}
SELECT id FROM inserted CROSS JOIN (SELECT count(*) FROM wake) w`,
);

const findStatement = statement(
  'unique_find',
  (n) => `
SELECT id FROM ${n.executions} WHERE unfinished_key = $1`,
);

const findManyStatement = statement(
  'unique_find_many',
  (n) => `
SELECT id, unfinished_key FROM ${n.executions} WHERE unfinished_key = ANY($1::text[])`,
);

// Lock order as in cancel: the queue rows first (a claim holds its work_queue row while it
// takes it; this DELETE then waits and finds it claimed), the history row after, through the
// sub-selects. "Never started": no attempt counted in either table and not claimed.
const replaceStatement = statement(
  'unique_replace',
  (n) => `
WITH target AS (
  SELECT id, attempts FROM ${n.executions} WHERE unfinished_key = $1
), unqueued AS (
  DELETE FROM ${n.workQueue} w USING target t
  WHERE w.execution_id = t.id AND w.claimed_until IS NULL AND w.attempts = 0 AND t.attempts = 0
  RETURNING w.execution_id
), unscheduled AS (
  DELETE FROM ${n.scheduledQueue} s USING target t
  WHERE s.execution_id = t.id AND t.attempts = 0
  RETURNING s.execution_id
), replaced AS (
  UPDATE ${n.executions} e
  SET payload = $2::jsonb, payload_bytes = pg_column_size($2::jsonb), run_at = r.run_at,
      status = CASE WHEN r.run_at > now() THEN 'scheduled' ELSE 'queued' END
  FROM (SELECT execution_id FROM unqueued UNION ALL SELECT execution_id FROM unscheduled) m,
       (SELECT coalesce($4::timestamptz, now() + $3::bigint * interval '1 millisecond', now()) AS run_at) r
  WHERE e.id = m.execution_id AND e.status IN ('scheduled', 'queued')
  RETURNING e.id, e.queue, e.name, e.status, e.priority, e.lease_ms, e.run_at, e.payload_bytes, e.group_key
), ready AS (
  INSERT INTO ${n.workQueue} (execution_id, queue, name, priority, lease_ms, payload_bytes, group_key)
  SELECT id, queue, name, priority, lease_ms, payload_bytes, group_key FROM replaced WHERE status = 'queued'
), waiting AS (
  INSERT INTO ${n.scheduledQueue} (execution_id, run_at)
  SELECT id, run_at FROM replaced WHERE status = 'scheduled'
), wake AS (
  SELECT pg_notify('${n.workChannel}', queue) FROM replaced WHERE status = 'queued'
)
SELECT t.id, (SELECT count(*) FROM replaced)::int AS replaced FROM target t CROSS JOIN (SELECT count(*) FROM wake) w`,
);

/**
 * The holder of a key can finish between our INSERT (which saw it) and our look-up (which
 * then finds nothing): insert again. Each round needs another execution with this key to
 * finish in that gap, so a few rounds are plenty.
 */
const MAX_ROUNDS = 20;

/** Returns the id of the new execution, or of the unfinished one that holds the key. */
export async function enqueueUnique(
  db: Queryable,
  n: SchemaNames,
  row: EnqueueRow,
  key: string,
  mode: UniqueMode,
  traceContext: string | null = null,
): Promise<string> {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const inserted = await db.query<{ id: string }>({
      ...insertStatement(n),
      values: [
        row.name,
        row.queue,
        row.payloadJson,
        row.priority,
        row.maxAttempts,
        row.timeoutMs,
        row.leaseMs,
        row.delayMs,
        row.runAt,
        row.backoffBaseMs,
        row.backoffMaxMs,
        key,
        row.group,
        traceContext,
      ],
    });
    if (inserted.rows.length > 0) return inserted.rows[0]!.id;
    if (mode === 'replace') {
      const res = await db.query<{ id: string; replaced: number }>({
        ...replaceStatement(n),
        values: [key, row.payloadJson, row.delayMs, row.runAt],
      });
      if (res.rows.length > 0) return res.rows[0]!.id;
    } else {
      const res = await db.query<{ id: string }>({ ...findStatement(n), values: [key] });
      if (res.rows.length > 0) return res.rows[0]!.id;
    }
  }
  throw new RhythmError(
    `could not enqueue with uniqueKey ${JSON.stringify(key)}: the executions holding it kept finishing while we looked (${MAX_ROUNDS} rounds)`,
  );
}

export interface KeyedRow {
  row: EnqueueRow;
  key: string;
  mode: UniqueMode;
}

/**
 * enqueueMany's rows that have a unique key, with the outcome of enqueueing them one by one in
 * order, in a few statements: one insert of the first row of each key (skipping keys an
 * unfinished execution holds), one look-up of the holders for 'keep', and the statements of
 * enqueueUnique only for 'replace' rows and for keys whose holder finished in between. A later
 * row with a key an earlier row of the batch took gets that execution (or replaces it).
 * Returns the ids in the order of `rows`.
 */
export async function enqueueUniqueMany(
  db: Queryable,
  n: SchemaNames,
  rows: KeyedRow[],
  traceContext: string | null = null,
): Promise<string[]> {
  const ids: string[] = new Array(rows.length);
  const first = new Map<string, number>();
  rows.forEach((r, i) => {
    if (!first.has(r.key)) first.set(r.key, i);
  });
  // Inserted in key order: two batches sharing keys then wait for each other's keys in one
  // order, never crosswise (which would be a deadlock).
  const firsts = [...first.values()].sort((a, b) => (rows[a]!.key < rows[b]!.key ? -1 : 1));
  const inserted = await enqueueKeyedRows(
    db,
    n,
    firsts.map((i) => rows[i]!.row),
    firsts.map((i) => rows[i]!.key),
    traceContext,
  );
  const rest: number[] = [];
  rows.forEach((r, i) => {
    const id = inserted.get(r.key);
    if (id !== undefined && (first.get(r.key) === i || r.mode === 'keep')) ids[i] = id;
    else rest.push(i);
  });
  const keep = [...new Set(rest.filter((i) => rows[i]!.mode === 'keep').map((i) => rows[i]!.key))];
  const holders = new Map<string, string>();
  if (keep.length > 0) {
    const res = await db.query<{ id: string; unfinished_key: string }>({ ...findManyStatement(n), values: [keep] });
    for (const h of res.rows) holders.set(h.unfinished_key, h.id);
  }
  for (const i of rest) {
    const r = rows[i]!;
    const held = r.mode === 'keep' ? holders.get(r.key) : undefined;
    ids[i] = held ?? (await enqueueUnique(db, n, r.row, r.key, r.mode, traceContext));
  }
  return ids;
}
