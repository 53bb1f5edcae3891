/**
 * Direct hand-off to an idle worker. Waking a worker with a NOTIFY and letting it claim costs
 * a claim round trip after the enqueue's commit, which is most of the wake-up latency left
 * once the commit itself is paid. So an idle worker leaves an offer (worker_offers), and a
 * single enqueue() takes it in its own statement (sql/enqueue.ts): the new row is inserted
 * already leased to that worker, with the lease token the offer reserved, and the NOTIFY
 * carries the claimed task. Each offer is taken at most once (the enqueue deletes it, with
 * SKIP LOCKED), names one worker by a random key, and expires unless refreshed, so a worker
 * that died takes no tasks after its offer lapses.
 *
 * A worker that cannot know whether its offer was taken (the LISTEN connection was lost, or
 * it is stopping) withdraws it: if the delete finds nothing, the offer was taken, and the
 * task is read back by its lease token (handedTask).
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';
import type { ClaimedTask } from './claim.js';

/**
 * Most bytes of payload (as escaped in the NOTIFY) and trace context a handed task may carry:
 * a NOTIFY payload must stay under 8000 bytes, and the rest of the message is well under 2000.
 * A larger task is claimed the ordinary way.
 */
export const HANDOFF_MAX_BYTES = 6000;

/** Offers whose worker has not refreshed them for this long are deleted by the next offer. */
const STALE_OFFER = "interval '1 minute'";

const offerStatement = statement(
  'offer',
  (n) => `
WITH stale AS (
  DELETE FROM ${n.workerOffers} WHERE queue = $2 AND expires_at < now() - ${STALE_OFFER}
)
INSERT INTO ${n.workerOffers} (offer_key, queue, names, worker_id, lease_token, lease_ms, expires_at)
VALUES ($1, $2, $3::text[], $4, nextval('${n.leaseTokenSeq}'), $5, now() + $6 * interval '1 millisecond')
RETURNING lease_token`,
);

const refreshStatement = statement(
  'offer_refresh',
  (n) => `
UPDATE ${n.workerOffers} SET expires_at = now() + $2 * interval '1 millisecond' WHERE offer_key = $1 RETURNING offer_key`,
);

const withdrawStatement = statement(
  'offer_withdraw',
  (n) => `
DELETE FROM ${n.workerOffers} WHERE offer_key = $1 RETURNING offer_key`,
);

const handedStatement = statement(
  'offer_handed',
  (n) => `
SELECT e.id, e.name, e.payload::text AS payload_json, w.payload_bytes, w.attempts, e.max_attempts, e.timeout_ms,
       coalesce(w.lease_ms, $2) AS lease_ms, e.trace_context
FROM ${n.workQueue} w JOIN ${n.executions} e ON e.id = w.execution_id
WHERE w.lease_token = $1 AND e.status = 'queued'`,
);

export interface Offer {
  key: string;
  queue: string;
  names: string[];
  workerId: string;
  leaseMs: number;
  /** How long the offer stays open unless refreshed. */
  ttlMs: number;
}

/** Makes an offer; returns the lease token a task handed on it will carry. */
export async function makeOffer(db: Queryable, n: SchemaNames, o: Offer): Promise<string> {
  const res = await db.query<{ lease_token: string }>({
    ...offerStatement(n),
    values: [o.key, o.queue, o.names, o.workerId, o.leaseMs, o.ttlMs],
  });
  return res.rows[0]!.lease_token;
}

/** Keeps an offer open; false if it is gone (taken by an enqueue). */
export async function refreshOffer(db: Queryable, n: SchemaNames, key: string, ttlMs: number): Promise<boolean> {
  const res = await db.query({ ...refreshStatement(n), values: [key, ttlMs] });
  return res.rows.length > 0;
}

/** Withdraws an offer; false if it was already gone (taken by an enqueue). */
export async function withdrawOffer(db: Queryable, n: SchemaNames, key: string): Promise<boolean> {
  const res = await db.query({ ...withdrawStatement(n), values: [key] });
  return res.rows.length > 0;
}

/** The task handed on a taken offer, read back by the offer's lease token (undefined if it is no longer leased with it). */
export async function handedTask(db: Queryable, n: SchemaNames, leaseToken: string, leaseMs: number): Promise<ClaimedTask | undefined> {
  const res = await db.query<{
    id: string;
    name: string;
    payload_json: string;
    payload_bytes: number | null;
    attempts: number;
    max_attempts: number;
    timeout_ms: number | null;
    lease_ms: number;
    trace_context: Record<string, string> | null;
  }>({ ...handedStatement(n), values: [leaseToken, leaseMs] });
  const r = res.rows[0];
  if (r === undefined) return undefined;
  return {
    id: r.id,
    name: r.name,
    payloadJson: r.payload_json,
    payloadBytes: r.payload_bytes ?? 0,
    attempt: r.attempts,
    maxAttempts: r.max_attempts,
    timeoutMs: r.timeout_ms,
    leaseMs: r.lease_ms,
    leaseToken,
    waitedMs: 0,
    traceContext: r.trace_context,
  };
}

/** A task handed to an offer, as the enqueue's NOTIFY carries it. */
export interface Handoff {
  offer: string;
  task: ClaimedTask;
}

interface HandoffMessage {
  offer: string;
  id: string;
  name: string;
  leaseToken: string;
  maxAttempts: number;
  timeoutMs: number | null;
  leaseMs: number;
  payloadBytes: number | null;
  traceContext: Record<string, string> | null;
  payload: string;
}

/** Reads a hand-off NOTIFY payload (a JSON object; a plain wake-up is a queue name, which never starts with "{"). */
export function parseHandoff(text: string): Handoff | undefined {
  if (!text.startsWith('{')) return undefined;
  const m = JSON.parse(text) as HandoffMessage;
  return {
    offer: m.offer,
    task: {
      id: m.id,
      name: m.name,
      payloadJson: m.payload,
      payloadBytes: m.payloadBytes ?? 0,
      attempt: 1,
      maxAttempts: m.maxAttempts,
      timeoutMs: m.timeoutMs,
      leaseMs: m.leaseMs,
      leaseToken: m.leaseToken,
      waitedMs: 0,
      traceContext: m.traceContext,
    },
  };
}
