/**
 * Sends a signal to a workflow: stores it (taken first in, first out by Signal.next) and wakes
 * the workflow if its current await waits for that name.
 *
 * Two statements in one transaction: the workflows row is locked first, on its own. An
 * activation suspending the workflow holds that lock while it commits, so the signal either
 * locks first (and the activation, counting after its own lock, sees the stored signal) or
 * waits for the activation's commit and then reads, in a statement begun after it, the status
 * it parked the workflow in, its new wait and its timer row. In one statement that would not
 * hold: its snapshot, taken before it waited for the lock, still shows the workflow running,
 * and the wake-up would be lost.
 */
import type pg from 'pg';
import { statement } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';
import { inTransaction } from '../db/transaction.js';
import { requeueParkedCtes } from './wake-parents.js';

const lockStatement = statement(
  'wf_signal_lock',
  (n) => `
SELECT execution_id FROM ${n.workflows} WHERE execution_id = $1 FOR UPDATE`,
);

const signalStatement = statement(
  'wf_signal',
  (n) => `
WITH target AS (
  SELECT id, kind, status FROM ${n.executions} WHERE id = $1
), stored AS (
  INSERT INTO ${n.workflowSignals} (execution_id, name, payload)
  SELECT id, $2, $3::jsonb FROM target WHERE kind = 'workflow' AND status IN ('scheduled', 'queued')
  RETURNING id, execution_id
), waiting AS (
  -- Locked by the statement before: this reads the wait as the last activation left it.
  SELECT w.execution_id AS id, ($2 = ANY (w.wait_signals) AND (w.wait_mode = 'any' OR w.pending <= 0)) AS wake
  FROM ${n.workflows} w JOIN stored s ON w.execution_id = s.execution_id
), ${requeueParkedCtes(n, '', 'waiting', 'x.wake')}
SELECT t.kind, t.status, (SELECT id FROM stored) AS signal_id, (SELECT count(*) FROM notify)::int AS woken
FROM target t`,
);

export interface SignalSent {
  /** The target's kind and status, or null if there is no such execution. */
  target: { kind: string; status: string } | null;
  /** The stored signal's id, or null if it was not stored (not a running workflow). */
  signalId: string | null;
}

export async function sendSignal(pool: pg.Pool, n: SchemaNames, id: string, name: string, payloadJson: string): Promise<SignalSent> {
  const res = await inTransaction(pool, async (client) => {
    await client.query({ ...lockStatement(n), values: [id] });
    return client.query<{ kind: string; status: string; signal_id: string | null }>({
      ...signalStatement(n),
      values: [id, name, payloadJson],
    });
  });
  const r = res.rows[0];
  if (!r) return { target: null, signalId: null };
  return { target: { kind: r.kind, status: r.status }, signalId: r.signal_id };
}
