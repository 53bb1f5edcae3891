/**
 * Inserts many executions in one statement: the history rows, their work_queue or
 * scheduled_queue rows, and one wake-up NOTIFY per distinct ready queue (not one per row).
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';

export interface EnqueueRow {
  name: string;
  queue: string;
  payloadJson: string;
  priority: number;
  maxAttempts: number;
  timeoutMs: number | null;
  leaseMs: number | null;
  delayMs: number | null;
  runAt: Date | null;
  parentId: string | null;
}

// Scalars travel as arrays and the payloads as one JSON array (already JSON text, spliced in
// unchanged): measured on 10k rows, 28 ms against 84 ms for a jsonb[] parameter (pg escapes
// every element) and 183 ms for json_to_recordset.
const enqueueStatement = statement('enqueue', (n) => `
WITH input AS (
  SELECT a.name, a.queue, j.payload, a.priority, a.max_attempts, a.timeout_ms, a.lease_ms, a.parent_id,
         coalesce(a.run_at, now() + a.delay_ms * interval '1 millisecond', now()) AS run_at
  FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::int[], $6::int[], $7::bigint[], $8::timestamptz[], $9::bigint[])
         WITH ORDINALITY AS a(name, queue, priority, max_attempts, timeout_ms, lease_ms, delay_ms, run_at, parent_id, ord)
  JOIN jsonb_array_elements($10::jsonb) WITH ORDINALITY AS j(payload, ord) USING (ord)
  ORDER BY ord
), inserted AS (
  INSERT INTO ${n.executions} (name, queue, status, payload, priority, max_attempts, timeout_ms, lease_ms, run_at, parent_id)
  SELECT name, queue, CASE WHEN run_at > now() THEN 'scheduled' ELSE 'queued' END,
         payload, priority, max_attempts, timeout_ms, lease_ms, run_at, parent_id
  FROM input
  RETURNING id, name, queue, status, priority, lease_ms, run_at
), ready AS (
  INSERT INTO ${n.workQueue} (execution_id, queue, name, priority, lease_ms)
  SELECT id, queue, name, priority, lease_ms FROM inserted WHERE status = 'queued'
), waiting AS (
  INSERT INTO ${n.scheduledQueue} (execution_id, run_at)
  SELECT id, run_at FROM inserted WHERE status = 'scheduled'
), wake AS (
  SELECT pg_notify('${n.workChannel}', queue) FROM (SELECT DISTINCT queue FROM inserted WHERE status = 'queued') q
)
SELECT id FROM inserted CROSS JOIN (SELECT count(*) FROM wake) w ORDER BY id`);

/** Returns the new ids in input order (identity values are assigned in the order of the rows). */
export async function enqueueRows(db: Queryable, n: SchemaNames, rows: EnqueueRow[]): Promise<string[]> {
  const res = await db.query<{ id: string }>({
    ...enqueueStatement(n),
    values: [
      rows.map((r) => r.name),
      rows.map((r) => r.queue),
      rows.map((r) => r.priority),
      rows.map((r) => r.maxAttempts),
      rows.map((r) => r.timeoutMs),
      rows.map((r) => r.leaseMs),
      rows.map((r) => r.delayMs),
      rows.map((r) => r.runAt),
      rows.map((r) => r.parentId),
      `[${rows.map((r) => r.payloadJson).join(',')}]`,
    ],
  });
  return res.rows.map((r) => r.id);
}
