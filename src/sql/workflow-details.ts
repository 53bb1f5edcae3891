/**
 * What a workflow is doing, for inspection (the CLI's `get`): its pinned version, what its
 * current await waits for, its children by call sequence, and the signals it has not taken.
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';

export interface WorkflowDetails {
  flowHash: string | null;
  activations: number;
  /** What the current await waits for (empty lists once the workflow finished). */
  waitingOn: { mode: 'all' | 'any'; children: number[]; signals: string[]; wakeAt: Date | null; pending: number };
  children: { seq: number; id: string; kind: 'task' | 'workflow'; name: string; queue: string; status: string }[];
  /** Signals sent and not taken yet, oldest first. */
  signals: { id: string; name: string; sentAt: Date }[];
}

interface DetailsRow {
  flow_hash: string | null;
  activations: number;
  wait_mode: 'all' | 'any';
  wait_children: number[];
  wait_signals: string[];
  wake_at: Date | null;
  pending: number;
  children: WorkflowDetails['children'];
  /** Built by json_build_object: the time is JSON text. */
  signals: { id: string; name: string; sentAt: string }[];
}

const detailsStatement = statement(
  'wf_details',
  (n) => `
SELECT w.flow_hash, w.activations, w.wait_mode, w.wait_children, w.wait_signals, w.wake_at, w.pending,
  (SELECT coalesce(json_agg(json_build_object('seq', c.parent_seq, 'id', c.id::text, 'kind', c.kind, 'name', c.name, 'queue', c.queue,
          'status', CASE WHEN c.status = 'queued' AND q.claimed_until IS NOT NULL THEN 'running' ELSE c.status END) ORDER BY c.parent_seq), '[]')
   FROM ${n.executions} c LEFT JOIN ${n.workQueue} q ON q.execution_id = c.id
   WHERE c.parent_id = w.execution_id AND c.parent_seq IS NOT NULL) AS children,
  (SELECT coalesce(json_agg(json_build_object('id', s.id::text, 'name', s.name, 'sentAt', s.sent_at) ORDER BY s.id), '[]')
   FROM ${n.workflowSignals} s WHERE s.execution_id = w.execution_id) AS signals
FROM ${n.workflows} w WHERE w.execution_id = $1`,
);

/** Null if the execution is not a workflow (or does not exist). */
export async function workflowDetails(db: Queryable, n: SchemaNames, id: string): Promise<WorkflowDetails | null> {
  const res = await db.query<DetailsRow>({ ...detailsStatement(n), values: [id] });
  const r = res.rows[0];
  if (!r) return null;
  return {
    flowHash: r.flow_hash,
    activations: r.activations,
    waitingOn: { mode: r.wait_mode, children: r.wait_children, signals: r.wait_signals, wakeAt: r.wake_at, pending: r.pending },
    children: r.children,
    signals: r.signals.map((s) => ({ ...s, sentAt: new Date(s.sentAt) })),
  };
}
