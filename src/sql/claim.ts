/**
 * Claims up to `limit` ready tasks of one queue in one statement, highest priority first,
 * then oldest; only the task names this worker serves. SKIP LOCKED lets any number of
 * dispatchers claim concurrently without waiting on or double-taking each other's rows.
 * Each claim gets a fresh lease token (the fence for completion and heartbeats).
 * Only the small work_queue table is written; the history row is only read (for the payload)
 * and is next written when the attempt settles. A work_queue row whose execution is no longer
 * queued (cancelled while being promoted) is not returned; its lease expires and recovery
 * deletes it. Claims are bounded in payload bytes as well as in count (ClaimLimits), so a
 * worker never takes more payload than it can hold.
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';

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
}

export interface ClaimLimits {
  /** Most tasks. */
  count: number;
  /** Most payload bytes in all. */
  bytes: number;
  /** Take the first task even if it alone exceeds `bytes` (the worker holds nothing else). */
  allowOversized: boolean;
}

export interface Claim {
  tasks: ClaimedTask[];
  /** Ready tasks were left because of the byte bound: claim again once bytes are freed. */
  cutByBytes: boolean;
}

/**
 * Payloads up to this size come back with the claim; larger ones are read by a second
 * statement once the claim has committed. A claim commits only after its last row is sent,
 * so a worker that died receiving a huge payload would roll its own claim back, attempt
 * uncounted, and die again on every restart; read apart, the attempt is counted first.
 */
export const INLINE_PAYLOAD_BYTES = 1024 * 1024;

// The byte bound keeps a prefix of the candidates (in claim order) whose sizes sum to at most
// $6, or just the first candidate when $7 allows an oversized one. Candidates left out stay
// locked only until this statement ends; the last row, present only then, says so.
const claimStatement = statement('claim', (n) => `
WITH candidates AS (
  SELECT execution_id, priority, coalesce(payload_bytes, 0)::bigint AS bytes FROM ${n.workQueue}
  WHERE queue = $1 AND claimed_until IS NULL AND name = ANY($2::text[])
  ORDER BY priority DESC, execution_id
  LIMIT $3
  FOR UPDATE SKIP LOCKED
), sized AS (
  SELECT execution_id, bytes, (sum(bytes) OVER w <= $6 OR (row_number() OVER w = 1 AND $7)) AS fits
  FROM candidates
  WINDOW w AS (ORDER BY priority DESC, execution_id)
), claimed AS (
  UPDATE ${n.workQueue} w
  SET attempts = w.attempts + 1,
      lease_token = nextval('${n.leaseTokenSeq}'),
      claimed_by = $4,
      claimed_at = now(),
      claimed_until = now() + coalesce(w.lease_ms, $5) * interval '1 millisecond'
  FROM sized s
  WHERE w.execution_id = s.execution_id AND s.fits
  RETURNING w.execution_id, w.priority, w.attempts, w.lease_token, coalesce(w.lease_ms, $5) AS lease_ms, s.bytes
)
(SELECT e.id, e.name, CASE WHEN c.bytes <= $8 THEN e.payload::text END AS payload_json, c.bytes AS payload_bytes,
        c.attempts, e.max_attempts, e.timeout_ms, c.lease_ms, c.lease_token
 FROM claimed c JOIN ${n.executions} e ON e.id = c.execution_id
 WHERE e.status = 'queued'
 ORDER BY c.priority DESC, c.execution_id)
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL WHERE EXISTS (SELECT 1 FROM sized WHERE NOT fits)`);

const payloadsStatement = statement('claim_payloads', (n) => `
SELECT id, payload::text AS payload_json FROM ${n.executions} WHERE id = ANY($1::bigint[])`);

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
  const claim = await claimWithin(db, n, queue, names, { count: limit, bytes: Number.MAX_SAFE_INTEGER, allowOversized: true }, workerId, leaseMs);
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
  const res = await db.query({
    ...claimStatement(n),
    values: [queue, names, limits.count, workerId, leaseMs, limits.bytes, limits.allowOversized, INLINE_PAYLOAD_BYTES],
  });
  // A last row of NULLs says the byte bound left ready tasks behind. (A claimed row whose
  // execution is no longer queued, cancelled while being promoted, is not returned at all.)
  let cutByBytes = false;
  const tasks: ClaimedTask[] = [];
  for (const r of res.rows) {
    if (r.id === null) {
      cutByBytes = true;
      continue;
    }
    tasks.push({
      id: r.id,
      name: r.name,
      payloadJson: r.payload_json,
      payloadBytes: Number(r.payload_bytes),
      attempt: r.attempts,
      maxAttempts: r.max_attempts,
      timeoutMs: r.timeout_ms,
      leaseMs: r.lease_ms,
      leaseToken: r.lease_token,
    });
  }
  const large = tasks.filter((t) => t.payloadJson === null);
  if (large.length > 0) {
    // The claim has committed: these attempts are counted whatever happens while reading.
    const payloads = await db.query({ ...payloadsStatement(n), values: [large.map((t) => t.id)] });
    const byId = new Map(payloads.rows.map((r) => [r.id as string, r.payload_json as string]));
    for (const t of large) t.payloadJson = byId.get(t.id)!;
  }
  return { tasks, cutByBytes };
}
