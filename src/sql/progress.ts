/**
 * Stores the latest progress of many running executions in one statement. A value counts
 * only while its attempt still holds the lease (token match), so a late report from an
 * attempt that was taken over or cancelled changes nothing. History rows being settled at
 * the same moment are skipped rather than waited for (SKIP LOCKED, in id order): they are
 * finishing, and waiting could deadlock with the settle's own multi-row update.
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';

const progressStatement = statement(
  'progress',
  (n) => `
WITH input AS (
  SELECT t.id, t.lease_token, p.progress
  FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS t(id, lease_token, ord)
  JOIN jsonb_array_elements($3::jsonb) WITH ORDINALITY AS p(progress, ord) USING (ord)
), target AS (
  SELECT e.id, i.progress FROM ${n.executions} e
  JOIN input i ON i.id = e.id
  JOIN ${n.workQueue} w ON w.execution_id = i.id AND w.lease_token = i.lease_token
  WHERE e.id = ANY($1::bigint[]) AND e.status = 'queued'
  ORDER BY e.id
  FOR UPDATE OF e SKIP LOCKED
)
UPDATE ${n.executions} e SET progress = t.progress FROM target t WHERE e.id = t.id`,
);

export interface ProgressReport {
  id: string;
  leaseToken: string;
  /** The progress value as JSON text. */
  json: string;
}

/** Returns how many executions' progress was stored. */
export async function writeProgress(db: Queryable, n: SchemaNames, reports: ProgressReport[]): Promise<number> {
  const res = await db.query({
    ...progressStatement(n),
    values: [reports.map((r) => r.id), reports.map((r) => r.leaseToken), `[${reports.map((r) => r.json).join(',')}]`],
  });
  return res.rowCount ?? 0;
}
