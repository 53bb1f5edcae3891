/**
 * Claims up to `limit` ready tasks of one queue in one statement, highest priority first,
 * then oldest; only the task names this worker serves. SKIP LOCKED lets any number of
 * dispatchers claim concurrently without waiting on or double-taking each other's rows.
 * Each claim gets a fresh lease token (the fence for completion and heartbeats).
 * Only the small work_queue table is written; the history row is only read (for the payload)
 * and is next written when the attempt settles. A work_queue row whose execution is no longer
 * queued (cancelled while being promoted) is not returned; its lease expires and recovery
 * deletes it. Claims are bounded in payload bytes as well as in count (ClaimLimits), so a
 * worker never takes more payload than it can hold, and by the queue's stored controls: none
 * while it is paused, no more than its rate limit allows, and, for a worker with group
 * concurrency, no more executions of one group than its limit across every process.
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';
import { REFILLED_TOKENS } from './controls.js';

export interface ClaimedTask {
  id: string;
  name: string;
  /** The payload as JSON text: parsed where the handler runs (on a thread, if it has one). */
  payloadJson: string;
  /** The payload's size as enqueued (jsonb bytes), counted against the worker's byte budget. */
  payloadBytes: number;
  attempt: number;
  maxAttempts: number;
  timeoutMs: number | null;
  leaseMs: number;
  leaseToken: string;
  /** How long it had been due when claimed (ms, on the database's clock): its wait so far. */
  waitedMs: number;
  /** The producer's trace context (executions.trace_context), or null. */
  traceContext: Record<string, string> | null;
}

export interface ClaimLimits {
  /** Most tasks. */
  count: number;
  /** Most payload bytes in all. */
  bytes: number;
  /** Take the first task even if it alone exceeds `bytes` (the worker holds nothing else). */
  allowOversized: boolean;
  /** Most executions of one group running at once, across every process (none if absent). */
  groupConcurrency?: number;
}

export interface Claim {
  tasks: ClaimedTask[];
  /** Ready tasks were left because of the byte bound: claim again once bytes are freed. */
  cutByBytes: boolean;
  /** Ready tasks were left because of group limits (or a race for a group's slots): claim again. */
  cutByGroups: boolean;
  /** The rate limit left ready tasks: the bucket holds a whole token again in this many ms. */
  refillInMs: number | null;
  /** The queue has controls (paused or rate-limited): no enqueue hands tasks to its workers. */
  controlled: boolean;
}

/**
 * Payloads up to this size come back with the claim; larger ones are read by a second
 * statement once the claim has committed. A claim commits only after its last row is sent,
 * so a worker that died receiving a huge payload would roll its own claim back, attempt
 * uncounted, and die again on every restart; read apart, the attempt is counted first.
 */
export const INLINE_PAYLOAD_BYTES = 1024 * 1024;

// The claim in three steps, one statement:
//  1. allowance: how many tasks this claim may start. A queue with no queue_controls row (the
//     usual case) reads one empty index entry and may start `count`; a paused queue none; a
//     rate-limited one the whole tokens of its bucket, refilled by time arithmetic under the
//     row's lock, so claims in any number of processes share one bucket.
//  2. candidates, in claim order, then those that fit: a prefix whose payload sizes sum to at
//     most $6 (or just the first when $7 allows an oversized one), within the allowance.
//     With group concurrency ($9), candidates skip groups already at their limit and each
//     group keeps as many as it has free slots; the slots are then taken in work_groups, in
//     group order (so concurrent claims cannot deadlock), and a group whose slots another
//     claim took meanwhile (the upsert's WHERE sees the latest count) gets none this time.
//  3. the claimed rows are leased and the bucket is charged for them. The ids travel as an
//     array too, so the UPDATE reads them through the primary key whatever the row estimates
//     (prepared, the statement gets a generic plan, which otherwise may scan the whole table).
// Candidates left out stay locked only until the statement ends. A last row, present only
// then or when the queue has controls, says why they were left: bytes, group limits, or the
// rate limit (with the time until the bucket holds a whole token again, so the dispatcher can
// sleep until exactly then), and whether the queue has controls (see Claim.controlled).
const claimSql = (grouped: boolean) => (n: SchemaNames) =>
  `
WITH control AS (
  SELECT c.paused, c.rate_max, c.rate_interval_ms, CASE WHEN c.rate_max IS NOT NULL THEN ${REFILLED_TOKENS('c')} END AS tokens
  FROM ${n.queueControls} c WHERE c.queue = $1
  FOR UPDATE
), allowance AS (
  SELECT coalesce(CASE WHEN k.paused THEN 0 ELSE least($3, floor(k.tokens) + 1) END, $3)::int AS scan,
         coalesce(CASE WHEN k.paused THEN 0 ELSE least($3, floor(k.tokens)) END, $3)::int AS starts
  FROM (SELECT) one LEFT JOIN control k ON true
), candidates AS (
  SELECT w.execution_id, w.priority, ${grouped ? 'w.group_key, ' : ''}coalesce(w.payload_bytes, 0)::bigint AS bytes FROM ${n.workQueue} w
  WHERE w.queue = $1 AND w.claimed_until IS NULL AND w.name = ANY($2::text[])${
    grouped
      ? `
    AND NOT EXISTS (SELECT 1 FROM ${n.workGroups} g WHERE g.queue = $1 AND g.group_key = w.group_key AND g.running >= $9)`
      : ''
  }
  ORDER BY w.priority DESC, w.execution_id
  LIMIT (SELECT scan FROM allowance)
  FOR UPDATE OF w SKIP LOCKED
), ${
    grouped
      ? `ranked AS (
  SELECT c.execution_id, c.priority, c.group_key, c.bytes,
         (c.group_key IS NULL OR row_number() OVER (PARTITION BY c.group_key ORDER BY c.priority DESC, c.execution_id) <= $9 - coalesce(g.running, 0)) AS group_ok
  FROM candidates c LEFT JOIN ${n.workGroups} g ON g.queue = $1 AND g.group_key = c.group_key
), sized AS (
  SELECT execution_id, group_key, bytes,`
      : `sized AS (
  SELECT execution_id, bytes,`
  }
         (sum(bytes) OVER w <= $6 OR (row_number() OVER w = 1 AND $7)) AND row_number() OVER w <= (SELECT starts FROM allowance) AS fits,
         row_number() OVER w <= (SELECT starts FROM allowance) AS rate_ok
  FROM ${grouped ? 'ranked WHERE group_ok' : 'candidates'}
  WINDOW w AS (ORDER BY priority DESC, execution_id)
), ${
    grouped
      ? `taken AS (
  INSERT INTO ${n.workGroups} AS g (queue, group_key, running, concurrency)
  SELECT $1, group_key, count(*), $9 FROM sized WHERE fits AND group_key IS NOT NULL
  GROUP BY group_key ORDER BY group_key
  ON CONFLICT (queue, group_key) DO UPDATE SET running = g.running + excluded.running, concurrency = excluded.concurrency
  WHERE g.running + excluded.running <= excluded.concurrency
  RETURNING g.group_key
), `
      : ''
  }claimed AS (
  UPDATE ${n.workQueue} w
  SET attempts = w.attempts + 1,
      lease_token = nextval('${n.leaseTokenSeq}'),
      claimed_by = $4,
      claimed_at = now(),
      claimed_until = now() + coalesce(w.lease_ms, $5) * interval '1 millisecond'${
        grouped
          ? `,
      holds_group_slot = s.group_key IS NOT NULL`
          : ''
      }
  FROM sized s
  WHERE w.execution_id = ANY(ARRAY(SELECT execution_id FROM sized WHERE fits)) AND w.execution_id = s.execution_id AND s.fits${
    grouped
      ? `
    AND (s.group_key IS NULL OR s.group_key IN (SELECT group_key FROM taken))`
      : ''
  }
  RETURNING w.execution_id, w.priority, w.attempts, w.lease_token, coalesce(w.lease_ms, $5) AS lease_ms, s.bytes
), spent AS (
  UPDATE ${n.queueControls} c
  SET tokens = k.tokens - (SELECT count(*) FROM claimed), refilled_at = greatest(c.refilled_at, now())
  FROM control k
  WHERE c.queue = $1 AND k.rate_max IS NOT NULL
  RETURNING c.tokens, c.rate_max, c.rate_interval_ms
)
(SELECT e.id, e.name, CASE WHEN c.bytes <= $8 THEN e.payload::text END AS payload_json, c.bytes AS payload_bytes,
        c.attempts, e.max_attempts, e.timeout_ms, c.lease_ms, c.lease_token,
        greatest(0, extract(epoch FROM now() - e.run_at) * 1000)::float8 AS waited_ms, e.trace_context,
        NULL::boolean AS cut_bytes, NULL::boolean AS cut_groups, NULL::float8 AS refill_ms, NULL::boolean AS controlled
 FROM claimed c JOIN ${n.executions} e ON e.id = c.execution_id
 WHERE e.status = 'queued'
 ORDER BY c.priority DESC, c.execution_id)
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, f.cut_bytes, f.cut_groups, f.refill_ms, f.controlled
FROM (SELECT EXISTS (SELECT 1 FROM sized WHERE NOT fits AND rate_ok) AS cut_bytes,
             ${
               grouped
                 ? `EXISTS (SELECT 1 FROM ranked WHERE NOT group_ok)
               OR EXISTS (SELECT 1 FROM sized WHERE fits AND group_key IS NOT NULL AND group_key NOT IN (SELECT group_key FROM taken))`
                 : 'false'
             } AS cut_groups,
             CASE WHEN EXISTS (SELECT 1 FROM sized WHERE NOT rate_ok)
                  THEN (SELECT greatest(0, 1 - tokens) * rate_interval_ms / rate_max FROM spent) END AS refill_ms,
             EXISTS (SELECT 1 FROM control) AS controlled) f
WHERE f.cut_bytes OR f.cut_groups OR f.refill_ms IS NOT NULL OR f.controlled`;

const claimStatement = statement('claim', claimSql(false));
const claimGroupedStatement = statement('claim_grouped', claimSql(true));

/**
 * A claimed task, or (id null) the last row saying why ready tasks were left behind. bigint
 * columns arrive as text (pg's default), so payload_bytes is converted.
 */
interface ClaimRow {
  id: string | null;
  name: string;
  /** Null for a payload too large to come inline: read by payloadsStatement. */
  payload_json: string | null;
  payload_bytes: string;
  attempts: number;
  max_attempts: number;
  timeout_ms: number | null;
  lease_ms: number;
  lease_token: string;
  waited_ms: number;
  trace_context: Record<string, string> | null;
  cut_bytes: boolean;
  cut_groups: boolean;
  refill_ms: number | null;
  controlled: boolean;
}

const payloadsStatement = statement(
  'claim_payloads',
  (n) => `
SELECT id, payload::text AS payload_json FROM ${n.executions} WHERE id = ANY($1::bigint[])`,
);

/** Claims up to `limit` tasks, whatever their size. */
export async function claimTasks(
  db: Queryable,
  n: SchemaNames,
  queue: string,
  names: string[],
  limit: number,
  workerId: string,
  leaseMs: number,
): Promise<ClaimedTask[]> {
  const claim = await claimWithin(
    db,
    n,
    queue,
    names,
    { count: limit, bytes: Number.MAX_SAFE_INTEGER, allowOversized: true },
    workerId,
    leaseMs,
  );
  return claim.tasks;
}

/** Claims within count and byte limits. */
export async function claimWithin(
  db: Queryable,
  n: SchemaNames,
  queue: string,
  names: string[],
  limits: ClaimLimits,
  workerId: string,
  leaseMs: number,
): Promise<Claim> {
  const values = [queue, names, limits.count, workerId, leaseMs, limits.bytes, limits.allowOversized, INLINE_PAYLOAD_BYTES];
  const grouped = limits.groupConcurrency !== undefined;
  const res = await db.query<ClaimRow>({
    ...(grouped ? claimGroupedStatement(n) : claimStatement(n)),
    values: grouped ? [...values, limits.groupConcurrency] : values,
  });
  // A last row without an id says why ready tasks were left behind. (A claimed row whose
  // execution is no longer queued, cancelled while being promoted, is not returned at all.)
  let cutByBytes = false;
  let cutByGroups = false;
  let refillInMs: number | null = null;
  let controlled = false;
  const tasks: ClaimedTask[] = [];
  const large: ClaimedTask[] = [];
  for (const r of res.rows) {
    if (r.id === null) {
      cutByBytes = r.cut_bytes;
      cutByGroups = r.cut_groups;
      refillInMs = r.refill_ms === null ? null : Math.max(1, Math.ceil(r.refill_ms));
      controlled = r.controlled;
      continue;
    }
    const task: ClaimedTask = {
      id: r.id,
      name: r.name,
      payloadJson: r.payload_json ?? '',
      payloadBytes: Number(r.payload_bytes),
      attempt: r.attempts,
      maxAttempts: r.max_attempts,
      timeoutMs: r.timeout_ms,
      leaseMs: r.lease_ms,
      leaseToken: r.lease_token,
      waitedMs: r.waited_ms,
      traceContext: r.trace_context,
    };
    tasks.push(task);
    if (r.payload_json === null) large.push(task);
  }
  if (large.length > 0) {
    // The claim has committed: these attempts are counted whatever happens while reading.
    const payloads = await db.query<{ id: string; payload_json: string }>({ ...payloadsStatement(n), values: [large.map((t) => t.id)] });
    const byId = new Map(payloads.rows.map((r) => [r.id, r.payload_json]));
    for (const t of large) t.payloadJson = byId.get(t.id)!;
  }
  return { tasks, cutByBytes, cutByGroups, refillInMs, controlled };
}
