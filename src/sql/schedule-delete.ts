/** Removes cron schedules: one by name, or those a config sync declared and no longer lists. */
import { statement, type Queryable } from './queryable.js';
import type { SchemaNames } from '../db/schema.js';

const deleteStatement = statement(
  'schedule_delete',
  (n) => `
DELETE FROM ${n.schedules} WHERE name = $1 RETURNING name`,
);

const deleteUnlistedStatement = statement(
  'schedule_delete_unlisted',
  (n) => `
DELETE FROM ${n.schedules} WHERE synced AND NOT (name = ANY($1::text[])) RETURNING name`,
);

/** True if the schedule existed. */
export async function deleteSchedule(db: Queryable, n: SchemaNames, name: string): Promise<boolean> {
  const res = await db.query({ ...deleteStatement(n), values: [name] });
  return (res.rowCount ?? 0) > 0;
}

/** Deletes synced schedules not in `keep`; returns their names. */
export async function deleteUnlistedSchedules(db: Queryable, n: SchemaNames, keep: string[]): Promise<string[]> {
  const res = await db.query<{ name: string }>({ ...deleteUnlistedStatement(n), values: [keep] });
  return res.rows.map((r) => r.name).sort();
}
