/**
 * Inserts many executions in one statement: the history rows, their work_queue or
 * scheduled_queue rows, and one wake-up NOTIFY per distinct ready queue (not one per row).
 * A single enqueue may instead hand its task to an idle worker's offer (see handoff.ts).
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';
import { HANDOFF_MAX_BYTES } from './handoff.js';

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
  /** Group for group concurrency (null: none). */
  group: string | null;
  /** Retry backoff of this execution (null: the Rhythm-wide one). */
  backoffBaseMs: number | null;
  backoffMaxMs: number | null;
}

// Scalars travel as arrays and the payloads as one JSON array (already JSON text, spliced in
// unchanged): measured on 10k rows, 28 ms against 84 ms for a jsonb[] parameter (pg escapes
// every element) and 183 ms for json_to_recordset. When every row has the same options (the
// usual bulk enqueue), the options travel once instead of as arrays.
const arrayInput = (unique: boolean) => `
  SELECT a.name, a.queue, j.payload, a.priority, a.max_attempts, a.timeout_ms, a.lease_ms, a.parent_id, a.group_key,
         coalesce(a.run_at, now() + a.delay_ms * interval '1 millisecond', now()) AS run_at,
         a.backoff_base_ms, a.backoff_max_ms${unique ? ', a.unique_key' : ''}
  FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::int[], $6::int[], $7::bigint[], $8::timestamptz[], $9::bigint[],
              $11::text[], $12::int[], $13::int[]${unique ? ', $15::text[]' : ''})
         WITH ORDINALITY AS a(name, queue, priority, max_attempts, timeout_ms, lease_ms, delay_ms, run_at, parent_id,
                              group_key, backoff_base_ms, backoff_max_ms, ${unique ? 'unique_key, ' : ''}ord)
  JOIN jsonb_array_elements($10::jsonb) WITH ORDINALITY AS j(payload, ord) USING (ord)
  ORDER BY ord`;

const UNIFORM_INPUT = `
  SELECT $1::text AS name, $2::text AS queue, j.payload, $3::int AS priority, $4::int AS max_attempts,
         $5::int AS timeout_ms, $6::int AS lease_ms, $9::bigint AS parent_id, $11::text AS group_key,
         coalesce($8::timestamptz, now() + $7::bigint * interval '1 millisecond', now()) AS run_at,
         $12::int AS backoff_base_ms, $13::int AS backoff_max_ms
  FROM jsonb_array_elements($10::jsonb) WITH ORDINALITY AS j(payload, ord)
  ORDER BY ord`;

/** Rows due later go to scheduled_queue (both routes of new executions). */
const WAITING = (n: SchemaNames) => `waiting AS (
  INSERT INTO ${n.scheduledQueue} (execution_id, run_at)
  SELECT id, run_at FROM inserted WHERE status = 'scheduled'
)`;

/**
 * The CTEs that follow an `inserted` CTE of new executions: each goes to work_queue (ready) or
 * scheduled_queue (due later), and each distinct ready queue gets one wake-up NOTIFY (a
 * `wake` CTE the final SELECT must reference, or Postgres skips it).
 */
export const routeInserted = (n: SchemaNames) => `), ready AS (
  INSERT INTO ${n.workQueue} (execution_id, queue, name, priority, lease_ms, payload_bytes, group_key)
  SELECT id, queue, name, priority, lease_ms, payload_bytes, group_key FROM inserted WHERE status = 'queued'
), ${WAITING(n)}, wake AS (
  SELECT pg_notify('${n.workChannel}', queue) FROM (SELECT DISTINCT queue FROM inserted WHERE status = 'queued') q
)`;

/**
 * A single enqueue's offer taking (see handoff.ts): before the insert, one live offer of an
 * idle worker serving this task is taken (deleted), when the task is ready now, has no group,
 * is small enough to travel in a NOTIFY, and its queue has no controls (paused, rate-limited).
 * The queued row is then inserted already leased to that worker with the offer's token, and
 * the NOTIFY carries the claimed task instead of the queue name. The statement's one input row
 * is the only one that can take the offer (the join on the smallest id), whatever the input.
 */
const takeOffer = (n: SchemaNames) => `
), taker AS (
  DELETE FROM ${n.workerOffers} o WHERE o.offer_key = (
    SELECT f.offer_key FROM ${n.workerOffers} f, input i
    WHERE f.queue = i.queue AND i.name = ANY(f.names) AND f.expires_at > now() AND i.run_at <= now() AND i.group_key IS NULL
      AND octet_length(to_json(i.payload::text)::text) + coalesce(octet_length($14::text), 0) <= ${HANDOFF_MAX_BYTES}
      AND NOT EXISTS (SELECT 1 FROM ${n.queueControls} c WHERE c.queue = i.queue)
    LIMIT 1
    FOR UPDATE OF f SKIP LOCKED)
  RETURNING o.offer_key, o.lease_token, o.lease_ms, o.worker_id`;

const routeHanded = (n: SchemaNames) => `), handed AS (
  SELECT i.id, t.offer_key, t.lease_token, t.worker_id, coalesce(i.lease_ms, t.lease_ms) AS lease_ms
  FROM inserted i JOIN taker t ON i.id = (SELECT min(id) FROM inserted) AND i.status = 'queued'
), ready AS (
  INSERT INTO ${n.workQueue} (execution_id, queue, name, priority, lease_ms, payload_bytes, group_key,
                              attempts, lease_token, claimed_by, claimed_at, claimed_until)
  SELECT i.id, i.queue, i.name, i.priority, i.lease_ms, i.payload_bytes, i.group_key,
         CASE WHEN h.id IS NULL THEN 0 ELSE 1 END, h.lease_token, h.worker_id,
         CASE WHEN h.id IS NOT NULL THEN now() END, now() + h.lease_ms * interval '1 millisecond'
  FROM inserted i LEFT JOIN handed h ON h.id = i.id WHERE i.status = 'queued'
), ${WAITING(n)}, wake AS (
  SELECT pg_notify('${n.workChannel}', CASE WHEN h.id IS NULL THEN i.queue ELSE json_build_object(
           'offer', h.offer_key, 'id', i.id::text, 'name', i.name, 'leaseToken', h.lease_token::text,
           'maxAttempts', i.max_attempts, 'timeoutMs', i.timeout_ms, 'leaseMs', h.lease_ms,
           'payloadBytes', i.payload_bytes, 'traceContext', i.trace_context, 'payload', i.payload::text)::text END)
  FROM inserted i LEFT JOIN handed h ON h.id = i.id WHERE i.status = 'queued'
)`;

// With unique keys (enqueueMany items that have one), a row whose key an unfinished execution
// holds is skipped by the partial unique index, and the keys of the rows inserted are returned.
// A separate statement: ON CONFLICT makes every insert speculative, which plain bulk enqueues
// should not pay for.
const insertFrom =
  (input: string, unique = false, handoff = false) =>
  (n: SchemaNames) =>
    `
WITH input AS (${input}${handoff ? takeOffer(n) : ''}
), inserted AS (
  INSERT INTO ${n.executions} (name, queue, status, payload, payload_bytes, priority, max_attempts, timeout_ms, lease_ms, run_at, parent_id,
                               group_key, backoff_base_ms, backoff_max_ms, trace_context${unique ? ', unique_key' : ''})
  SELECT name, queue, CASE WHEN run_at > now() THEN 'scheduled' ELSE 'queued' END,
         payload, pg_column_size(payload), priority, max_attempts, timeout_ms, lease_ms, run_at, parent_id,
         group_key, backoff_base_ms, backoff_max_ms, $14::jsonb${unique ? ', unique_key' : ''}
  FROM input${unique ? '\n  ON CONFLICT (unfinished_key) WHERE unfinished_key IS NOT NULL DO NOTHING' : ''}
  RETURNING id, name, queue, status, priority, lease_ms, run_at, payload_bytes, group_key${unique ? ', unique_key' : ''}${
    handoff ? ', max_attempts, timeout_ms, trace_context, payload' : ''
  }
${handoff ? routeHanded(n) : routeInserted(n)}
SELECT id${unique ? ', unique_key' : ''} FROM inserted CROSS JOIN (SELECT count(*) FROM wake) w ORDER BY id`;

const enqueueStatement = statement('enqueue', insertFrom(arrayInput(false)));
const enqueueKeyedStatement = statement('enqueue_keyed', insertFrom(arrayInput(true), true));
const enqueueUniformStatement = statement('enqueue_uniform', insertFrom(UNIFORM_INPUT));
const enqueueHandoffStatement = statement('enqueue_handoff', insertFrom(UNIFORM_INPUT, false, true));

type Options = Omit<EnqueueRow, 'payloadJson'>;
const OPTION_KEYS = ['name', 'queue', 'priority', 'maxAttempts', 'timeoutMs', 'leaseMs', 'delayMs', 'runAt', 'parentId'] as const;
// Sent after the payloads ($11 on): a parameter added last leaves the earlier numbering alone.
// The trace context ($14) is one value for the whole statement; unique keys, when sent, are $15.
const TRAILING_KEYS = ['group', 'backoffBaseMs', 'backoffMaxMs'] as const;

/**
 * Returns the new ids in input order (identity values are assigned in the order of the rows).
 * `handoff`: a single row may be handed to an idle worker's offer (see handoff.ts); only for
 * a statement that commits on its own, so an offer is never held by a caller's transaction.
 * `traceContext`: the enqueue span's propagation fields (JSON), stored with every row; one
 * span covers the whole call, so it travels once, as a scalar.
 */
export async function enqueueRows(
  db: Queryable,
  n: SchemaNames,
  rows: EnqueueRow[],
  traceContext: string | null = null,
  handoff = false,
): Promise<string[]> {
  const first = rows[0]!;
  const uniform = rows.every((r) => OPTION_KEYS.every((k) => sameOption(r[k], first[k])) && TRAILING_KEYS.every((k) => r[k] === first[k]));
  let text = uniform ? enqueueUniformStatement(n) : enqueueStatement(n);
  if (handoff && rows.length === 1) text = enqueueHandoffStatement(n);
  const res = await db.query<{ id: string }>({ ...text, values: [...rowValues(rows, uniform), traceContext] });
  return res.rows.map((r) => r.id);
}

/** $1-$13: the options, one value each when uniform (the same for every row), else one array each; the payloads as one JSON array. */
function rowValues(rows: EnqueueRow[], uniform: boolean): unknown[] {
  const payloads = `[${rows.map((r) => r.payloadJson).join(',')}]`;
  const column = <K extends keyof Options>(k: K) => (uniform ? rows[0]![k] : rows.map((r) => r[k]));
  return [...OPTION_KEYS.map(column), payloads, ...TRAILING_KEYS.map(column)];
}

function sameOption(a: unknown, b: unknown): boolean {
  return a === b || (a instanceof Date && b instanceof Date && a.getTime() === b.getTime());
}

/**
 * Inserts the rows whose unique key no unfinished execution holds (the keys must differ);
 * returns the new ids by key. The others are the caller's to resolve (see enqueue-unique.ts).
 */
export async function enqueueKeyedRows(
  db: Queryable,
  n: SchemaNames,
  rows: EnqueueRow[],
  keys: string[],
  traceContext: string | null = null,
): Promise<Map<string, string>> {
  const res = await db.query<{ id: string; unique_key: string }>({
    ...enqueueKeyedStatement(n),
    values: [...rowValues(rows, false), traceContext, keys],
  });
  return new Map(res.rows.map((r) => [r.unique_key, r.id]));
}
