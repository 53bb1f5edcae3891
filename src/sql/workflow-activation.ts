/**
 * Reads and commits workflow activations, many workflows per statement.
 *
 * `loadActivations` reads, without locks, what a batch of claimed workflows needs to run:
 * saved state, the outcomes of the children the last await waits for, signals not yet taken,
 * and the database clock (timers, settle and send times all use it).
 *
 * `commitActivations` writes their results in one transaction: lock each workflow row still
 * held under its lease token (a stale worker writes nothing), start the children (keyed by
 * (parent, seq): a child is never created twice), delete the signals taken, save states, then
 * park the suspended ones or put them straight back if what they wait for already happened,
 * and settle the finished ones (which wakes their own parents). A failed workflow keeps its
 * last saved state and wait, so retry() resumes it from its last await (a child retried
 * meanwhile delivers its new outcome); a completed one drops its state. Counting what already happened
 * runs after the lock, in a later statement: see wake-parents.ts for why no wake-up is lost.
 */
import type pg from 'pg';
import { statement, type Queryable } from './queryable.js';
import { settleAttempts, type Settlement } from './settle.js';
import { waitCheckCtes } from './wake-parents.js';
import type { Backoff } from '../backoff.js';
import type { SchemaNames } from '../db/schema.js';

/**
 * Most signals of one name handed to one activation; more wait for the next. Per name, so
 * a backlog of other names cannot hide the one the script waits for.
 */
const SIGNALS_PER_ACTIVATION = 100;

export interface LoadedWorkflow {
  id: string;
  flowHash: string | null;
  state: unknown;
  /** Settled awaited children: { seq, id, status, result, error, at }. */
  outcomes: {
    seq: number;
    id: string;
    status: 'completed' | 'failed' | 'cancelled';
    result: unknown;
    error: { name?: string; message?: string } | null;
    at: number;
  }[];
  signals: { id: string; name: string; payload: unknown; at: number }[];
}

export interface Loaded {
  /** The database clock, ms since the epoch. */
  now: number;
  workflows: Map<string, LoadedWorkflow>;
}

const loadStatement = statement(
  'wf_load',
  (n) => `
SELECT w.execution_id AS id, w.flow_hash, w.state,
  (SELECT coalesce(json_agg(json_build_object('seq', c.parent_seq, 'id', c.id::text, 'status', c.status, 'result', c.result,
                                              'error', c.error, 'at', extract(epoch FROM c.finished_at) * 1000) ORDER BY c.parent_seq), '[]')
   FROM ${n.executions} c
   WHERE c.parent_id = w.execution_id AND c.parent_seq = ANY (w.wait_children) AND c.status IN ('completed', 'failed', 'cancelled')) AS outcomes,
  (SELECT coalesce(json_agg(json_build_object('id', s.id::text, 'name', s.name, 'payload', s.payload, 'at', extract(epoch FROM s.sent_at) * 1000) ORDER BY s.id), '[]')
   FROM (SELECT s.*, row_number() OVER (PARTITION BY s.name ORDER BY s.id) AS k
         FROM ${n.workflowSignals} s WHERE s.execution_id = w.execution_id) s
   WHERE s.k <= ${SIGNALS_PER_ACTIVATION}) AS signals,
  extract(epoch FROM now()) * 1000 AS now_ms
FROM ${n.workflows} w
WHERE w.execution_id = ANY ($1::bigint[])`,
);

interface LoadRow {
  id: string;
  flow_hash: string | null;
  state: unknown;
  outcomes: LoadedWorkflow['outcomes'];
  signals: LoadedWorkflow['signals'];
  /** numeric, as text. */
  now_ms: string;
}

const nowStatement = statement('wf_now', () => `SELECT extract(epoch FROM now()) * 1000 AS now_ms`);

export async function loadActivations(db: Queryable, n: SchemaNames, ids: string[]): Promise<Loaded> {
  const res = await db.query<LoadRow>({ ...loadStatement(n), values: [ids] });
  const clock = res.rows[0] ?? (await db.query<{ now_ms: string }>(nowStatement(n))).rows[0]!;
  const now = Number(clock.now_ms);
  const workflows = new Map<string, LoadedWorkflow>();
  for (const r of res.rows) {
    workflows.set(r.id, { id: r.id, flowHash: r.flow_hash, state: r.state, outcomes: r.outcomes, signals: r.signals });
  }
  return { now, workflows };
}

/** A child to start: a task or a workflow, keyed by (parent, seq). */
export interface ChildRow {
  parentId: string;
  seq: number;
  kind: 'task' | 'workflow';
  name: string;
  queue: string;
  payloadJson: string;
  priority: number;
  maxAttempts: number;
  timeoutMs: number | null;
  leaseMs: number | null;
  delayMs: number | null;
}

/** What one activation wants written. */
export interface ActivationWrite {
  id: string;
  leaseToken: string;
  flowHash: string;
  children: ChildRow[];
  /** Inbox signal ids taken. */
  consumed: string[];
  outcome:
    | { status: 'suspended'; stateJson: string; mode: 'all' | 'any'; children: number[]; signals: string[]; wakeAt: number | null }
    | { status: 'completed'; resultJson: string }
    | { status: 'failed'; errorJson: string };
}

// Locks the rows the commit writes, in id order (as every statement that locks several
// workflows does), and only where the lease token still matches: the fence.
const lockStatement = statement(
  'wf_lock',
  (n) => `
SELECT w.execution_id AS id
FROM ${n.workflows} w
JOIN unnest($1::bigint[], $2::bigint[]) AS t(id, lease_token) ON t.id = w.execution_id
JOIN ${n.workQueue} q ON q.execution_id = w.execution_id AND q.lease_token = t.lease_token
JOIN ${n.executions} e ON e.id = w.execution_id AND e.status = 'queued'
WHERE w.execution_id = ANY ($1::bigint[])
ORDER BY w.execution_id
FOR UPDATE OF w, q, e`,
);

// Children of unknown workflow names are created failed, so the parent's await throws.
const writeStatement = statement(
  'wf_write',
  (n) => `
WITH child_input AS (
  SELECT a.*, j.payload, now() + coalesce(a.delay_ms, 0) * interval '1 millisecond' AS run_at,
         (a.kind = 'task' OR EXISTS (SELECT 1 FROM ${n.workflowSources} s WHERE s.name = a.name)) AS known
  FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::text[], $6::int[], $7::int[], $8::int[], $9::int[], $10::bigint[])
         WITH ORDINALITY AS a(parent_id, seq, kind, name, queue, priority, max_attempts, timeout_ms, lease_ms, delay_ms, ord)
  JOIN jsonb_array_elements($11::jsonb) WITH ORDINALITY AS j(payload, ord) USING (ord)
), children AS (
  INSERT INTO ${n.executions} (kind, name, queue, status, payload, payload_bytes, priority, max_attempts, timeout_ms, lease_ms,
                               run_at, parent_id, parent_seq, error, finished_at)
  SELECT kind, name, queue,
         CASE WHEN NOT known THEN 'failed' WHEN run_at > now() THEN 'scheduled' ELSE 'queued' END,
         payload, pg_column_size(payload), priority, max_attempts, timeout_ms, lease_ms, run_at, parent_id, seq,
         CASE WHEN NOT known THEN jsonb_build_object('name', 'UnknownWorkflowError',
           'message', format('no worker has registered a workflow named %s (register it with worker.workflow(name, file))', to_jsonb(name))) END,
         CASE WHEN NOT known THEN now() END
  FROM child_input
  ORDER BY ord
  ON CONFLICT (parent_id, parent_seq) WHERE parent_seq IS NOT NULL DO NOTHING
  RETURNING id, kind, name, queue, status, priority, lease_ms, run_at, payload_bytes, created_at
), child_dead AS (
  INSERT INTO ${n.deadLetters} (execution_id, queue, name, status, created_at)
  SELECT id, queue, name, status, created_at FROM children WHERE status = 'failed'
), child_states AS (
  INSERT INTO ${n.workflows} (execution_id) SELECT id FROM children WHERE kind = 'workflow' AND status <> 'failed'
), child_ready AS (
  INSERT INTO ${n.workQueue} (execution_id, queue, name, priority, lease_ms, payload_bytes)
  SELECT id, queue, name, priority, lease_ms, CASE WHEN kind = 'task' THEN payload_bytes ELSE 0 END FROM children WHERE status = 'queued'
), child_waiting AS (
  INSERT INTO ${n.scheduledQueue} (execution_id, run_at)
  SELECT id, run_at FROM children WHERE status = 'scheduled'
), child_wake AS (
  SELECT pg_notify('${n.workChannel}', queue) FROM (SELECT DISTINCT queue FROM children WHERE status = 'queued') q
), consumed AS (
  DELETE FROM ${n.workflowSignals} s
  USING unnest($12::bigint[], $13::bigint[]) AS c(id, execution_id)
  WHERE s.id = c.id AND s.execution_id = c.execution_id
), saved AS (
  UPDATE ${n.workflows} w
  SET flow_hash = i.flow_hash,
      state = CASE i.outcome WHEN 'suspended' THEN st.state WHEN 'completed' THEN NULL ELSE w.state END,
      wait_mode = CASE WHEN i.outcome = 'failed' THEN w.wait_mode ELSE i.mode END,
      wait_children = CASE WHEN i.outcome = 'failed' THEN w.wait_children ELSE ARRAY(SELECT json_array_elements_text(i.children::json)::int) END,
      wait_signals = CASE WHEN i.outcome = 'failed' THEN w.wait_signals ELSE ARRAY(SELECT json_array_elements_text(i.signals::json)) END,
      wake_at = CASE WHEN i.outcome = 'failed' THEN w.wake_at ELSE to_timestamp(i.wake_ms / 1000.0) END,
      activations = w.activations + 1
  FROM unnest($14::bigint[], $15::text[], $16::text[], $17::text[], $18::text[], $19::float8[], $21::text[]) WITH ORDINALITY
         AS i(id, flow_hash, mode, children, signals, wake_ms, outcome, ord)
  JOIN json_array_elements($20::json) WITH ORDINALITY AS st(state, ord) USING (ord)
  WHERE w.execution_id = i.id
)
SELECT (SELECT count(*) FROM children)::int AS children, (SELECT count(*) FROM child_wake)::int AS woken`,
);

/**
 * The scheduled_queue time of a workflow that waits without a timer. Every waiting workflow
 * has a scheduled_queue row, so whatever lists unfinished executions from the queue tables
 * (the admin API's selections, status counts) sees it as scheduled; this one is never due.
 */
const NO_TIMER = '9999-12-31T00:00:00Z';

// After the write (a new snapshot, under the locks): counts what each suspended workflow's
// wait already has. A wait already satisfied goes straight back to work_queue; the others
// leave it (status 'scheduled') for a scheduled_queue row at their timer, or never due.
const suspendStatement = statement(
  'wf_suspend',
  (n) => `
WITH ${waitCheckCtes(n, '$1::bigint[]')}, counted AS (
  UPDATE ${n.workflows} w SET pending = d.pending FROM decided d WHERE w.execution_id = d.id
), requeued AS (
  UPDATE ${n.workQueue} q
  SET claimed_until = NULL, claimed_by = NULL, claimed_at = NULL, lease_token = NULL, attempts = 0
  FROM decided d
  WHERE d.ready AND q.execution_id = d.id
  RETURNING q.queue
), parked AS (
  DELETE FROM ${n.workQueue} q USING decided d WHERE NOT d.ready AND q.execution_id = d.id
  RETURNING q.execution_id AS id
), waiting AS (
  UPDATE ${n.executions} e SET status = 'scheduled', attempts = 0 FROM parked p WHERE e.id = p.id
), timers AS (
  INSERT INTO ${n.scheduledQueue} (execution_id, run_at)
  SELECT d.id, coalesce(d.wake_at, '${NO_TIMER}'::timestamptz) FROM decided d JOIN parked p USING (id)
  ON CONFLICT (execution_id) DO UPDATE SET run_at = EXCLUDED.run_at
), wake AS (
  SELECT pg_notify('${n.workChannel}', queue) FROM (SELECT DISTINCT queue FROM requeued) q
)
SELECT (SELECT count(*) FROM requeued)::int AS requeued, (SELECT count(*) FROM wake)::int AS woken`,
);

export interface CommitResult {
  /** Activations written; the others had lost their lease (a stale worker). */
  written: Set<string>;
  /** Suspended workflows put straight back in work_queue (what they wait for had happened). */
  requeued: number;
  /** Parents of the workflows settled here to check again once committed (see wake-parents.ts). */
  missedParents: string[];
}

/** Writes a batch of activations in one transaction on `client` (the caller begins and commits). */
export async function commitActivations(
  client: pg.ClientBase,
  n: SchemaNames,
  items: ActivationWrite[],
  backoff: Backoff,
): Promise<CommitResult> {
  const locked = await client.query<{ id: string }>({
    ...lockStatement(n),
    values: [items.map((i) => i.id), items.map((i) => i.leaseToken)],
  });
  const written = new Set(locked.rows.map((r) => r.id));
  const held = items.filter((i) => written.has(i.id));
  if (held.length === 0) return { written, requeued: 0, missedParents: [] };

  const children = held.flatMap((i) => i.children);
  const consumed = held.flatMap((i) => i.consumed.map((s) => [s, i.id] as const));
  const states = held.map((i) => (i.outcome.status === 'suspended' ? i.outcome.stateJson : 'null'));
  await client.query({
    ...writeStatement(n),
    values: [
      children.map((c) => c.parentId),
      children.map((c) => c.seq),
      children.map((c) => c.kind),
      children.map((c) => c.name),
      children.map((c) => c.queue),
      children.map((c) => c.priority),
      children.map((c) => c.maxAttempts),
      children.map((c) => c.timeoutMs),
      children.map((c) => c.leaseMs),
      children.map((c) => c.delayMs),
      `[${children.map((c) => c.payloadJson).join(',')}]`,
      consumed.map((c) => c[0]),
      consumed.map((c) => c[1]),
      held.map((i) => i.id),
      held.map((i) => i.flowHash),
      held.map((i) => (i.outcome.status === 'suspended' ? i.outcome.mode : 'all')),
      held.map((i) => JSON.stringify(i.outcome.status === 'suspended' ? i.outcome.children : [])),
      held.map((i) => JSON.stringify(i.outcome.status === 'suspended' ? i.outcome.signals : [])),
      held.map((i) => (i.outcome.status === 'suspended' ? i.outcome.wakeAt : null)),
      `[${states.join(',')}]`,
      held.map((i) => i.outcome.status),
    ],
  });

  let requeued = 0;
  const suspended = held.filter((i) => i.outcome.status === 'suspended');
  if (suspended.length > 0) {
    const res = await client.query<{ requeued: number }>({ ...suspendStatement(n), values: [suspended.map((i) => i.id)] });
    requeued = res.rows[0]!.requeued;
  }

  const settlements: Settlement[] = [];
  for (const i of held) {
    if (i.outcome.status === 'completed') {
      settlements.push({ id: i.id, leaseToken: i.leaseToken, outcome: 'completed', resultJson: i.outcome.resultJson, errorJson: null });
    } else if (i.outcome.status === 'failed') {
      settlements.push({ id: i.id, leaseToken: i.leaseToken, outcome: 'fatal', resultJson: null, errorJson: i.outcome.errorJson });
    }
  }
  const missedParents: string[] = [];
  if (settlements.length > 0) await settleAttempts(client, n, settlements, backoff, missedParents);
  return { written, requeued, missedParents };
}
