/**
 * "The worker looked and took nothing", shown by the database rather than by waiting: a claim
 * statement that started after a given time (say, the enqueue whose NOTIFY woke the worker)
 * and has finished, as pg_stat_activity reports it for this database.
 */
import type { Rhythm } from 'rhythm';
import { until } from '../helpers.js';

/** Resolves once a connection (of this application_name, if given) ran a claim that started after `since` and finished. */
export async function claimRanSince(r: Rhythm, since: Date, applicationName?: string): Promise<void> {
  await until(
    `a claim by ${applicationName ?? 'any worker'} after ${since.toISOString()}`,
    async () => {
      const res = await r.pool.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity
       WHERE datname = current_database() AND state = 'idle' AND query_start > $1
         AND query LIKE '%claimed_until IS NULL AND w.name = ANY%' AND query NOT LIKE '%pg_stat_activity%'
         AND ($2::text IS NULL OR application_name = $2)`,
        [since, applicationName ?? null],
      );
      return res.rows[0].n > 0;
    },
    15_000,
  );
}
