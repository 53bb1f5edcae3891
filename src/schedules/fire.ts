/**
 * The internal worker's cron duty: fires every due schedule, a batch at a time. The times
 * are planned here (croner, see cron.ts) and written by one compare-and-set statement per
 * batch (see sql/schedule-fire.ts), which is what makes concurrent internal workers safe.
 */
import type { Logger } from 'pino';
import { dueSchedules, fireSchedules, type DueSchedule, type ScheduleAdvance } from '../sql/schedule-fire.js';
import type { Queryable } from '../sql/queryable.js';
import type { SchemaNames } from '../db/schema.js';
import { dueFires, parseCron, type CatchUp } from './cron.js';

const BATCH = 100;

/** Fires what is due; returns how many executions it inserted. */
export async function fireDueSchedules(db: Queryable, n: SchemaNames, log: Logger, isStopped: () => boolean): Promise<number> {
  let fired = 0;
  while (!isStopped()) {
    const due = await dueSchedules(db, n, BATCH);
    if (due.length === 0) break;
    const result = await fireSchedules(
      db,
      n,
      due.map((s) => plan(s, log)),
    );
    fired += result.fired;
    // A short batch was all there was; a batch taken entirely by other workers is theirs to finish.
    if (due.length < BATCH || result.advanced === 0) break;
  }
  return fired;
}

function plan(s: DueSchedule, log: Logger): ScheduleAdvance {
  try {
    const due = dueFires(parseCron(s.cron, s.timezone), s.nextRunAt, s.now, s.catchUp as CatchUp);
    if (due.skipped > 0) {
      log.warn(
        { schedule: s.name, skipped: due.skipped, catchUp: s.catchUp },
        'cron schedule: missed fire times skipped (no internal worker ran at those times)',
      );
    }
    return { name: s.name, revision: s.revision, nextRunAt: due.next, fires: due.fire };
  } catch (err) {
    // Only a row written around the API can get here (say, a time zone this runtime does not
    // know): stop the schedule rather than retry it on every pass; re-declaring it restarts it.
    log.error(
      { err, schedule: s.name, cron: s.cron, timezone: s.timezone },
      'cron schedule cannot be computed; it is stopped until declared again',
    );
    return { name: s.name, revision: s.revision, nextRunAt: null, fires: [] };
  }
}
