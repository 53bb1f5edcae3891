/**
 * The source versions of workflows: stored by every worker that registers one, read by a
 * worker asked to resume a workflow pinned to a version it does not have (its file changed).
 */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';

export interface FlowSource {
  name: string;
  hash: string;
  fileName: string;
  source: string;
}

const storeStatement = statement(
  'wf_sources_store',
  (n) => `
INSERT INTO ${n.workflowSources} (name, hash, file_name, source)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
ON CONFLICT (name, hash) DO NOTHING`,
);

const readStatement = statement(
  'wf_sources_read',
  (n) => `
SELECT s.name, s.hash, s.file_name, s.source FROM ${n.workflowSources} s
JOIN unnest($1::text[], $2::text[]) AS k(name, hash) ON s.name = k.name AND s.hash = k.hash`,
);

export async function storeSources(db: Queryable, n: SchemaNames, sources: FlowSource[]): Promise<void> {
  if (sources.length === 0) return;
  await db.query({
    ...storeStatement(n),
    values: [sources.map((s) => s.name), sources.map((s) => s.hash), sources.map((s) => s.fileName), sources.map((s) => s.source)],
  });
}

export async function readSources(db: Queryable, n: SchemaNames, keys: { name: string; hash: string }[]): Promise<FlowSource[]> {
  const res = await db.query<{ name: string; hash: string; file_name: string; source: string }>({
    ...readStatement(n),
    values: [keys.map((k) => k.name), keys.map((k) => k.hash)],
  });
  return res.rows.map((r) => ({ name: r.name, hash: r.hash, fileName: r.file_name, source: r.source }));
}
