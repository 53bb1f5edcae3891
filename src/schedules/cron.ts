/**
 * Cron arithmetic, all of it in croner: parsing (5 fields, or 6 with seconds first), time
 * zones and daylight saving time (a fixed-time job in a skipped hour runs just after it and
 * once in a repeated hour; an interval job skips the gap and runs on both repeats). Rhythm
 * stores the times croner computes; Postgres only compares them.
 *
 * Which due times to fire: a due time at most ON_TIME_MS late is on time and always fires.
 * Older ones were missed (no internal worker ran): catchUp 'none' drops them, 'last' fires
 * the latest of them, 'all' fires them all; at most MAX_FIRES (the most recent) in any case.
 */
import { Cron } from 'croner';
import { RhythmValidationError } from '../errors.js';
import { describe } from '../validate.js';

export type CatchUp = 'none' | 'last' | 'all';
export const CATCH_UP_MODES: readonly CatchUp[] = ['none', 'last', 'all'];

/** A due time later than this is missed, not merely late. */
export const ON_TIME_MS = 60_000;
/** Most executions one schedule fires at once (a catch-up after a long outage). */
export const MAX_FIRES = 100;
const MAX_CRON_LENGTH = 500;

/** Parses a cron expression in a time zone; RhythmValidationError naming whichever is wrong. */
export function parseCron(cron: unknown, timezone: unknown): Cron {
  checkTimezone(timezone);
  if (typeof cron !== 'string' || cron.trim() === '' || cron.length > MAX_CRON_LENGTH) {
    throw new RhythmValidationError(
      `cron expression must be a non-empty string of at most ${MAX_CRON_LENGTH} characters, got ${describe(cron)}`,
    );
  }
  let parsed: Cron;
  try {
    parsed = new Cron(cron, { timezone, mode: '5-or-6-parts', paused: true });
  } catch (err) {
    throw new RhythmValidationError(
      `invalid cron expression ${JSON.stringify(cron)}: ${(err as Error).message} (use 5 fields "minute hour day month weekday", or 6 with seconds first)`,
    );
  }
  if (parsed.nextRun() === null) throw new RhythmValidationError(`cron expression ${JSON.stringify(cron)} never fires (no such date)`);
  return parsed;
}

export function checkTimezone(timezone: unknown): asserts timezone is string {
  if (typeof timezone !== 'string' || timezone === '') {
    throw new RhythmValidationError(
      `option timezone must be an IANA time zone name such as "Europe/Paris" or "UTC", got ${describe(timezone)}`,
    );
  }
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    throw new RhythmValidationError(
      `unknown time zone ${JSON.stringify(timezone)}: use an IANA name such as "Europe/Paris", "America/New_York" or "UTC"`,
    );
  }
}

/** The first `count` fire times from `from` on (`from` included if it is one). */
export function upcoming(cron: Cron, from: Date, count: number): Date[] {
  return cron.nextRuns(count, new Date(from.getTime() - 1));
}

/** The first fire time strictly after `after` (null if there is none). */
export function nextAfter(cron: Cron, after: Date): Date | null {
  return cron.nextRun(after);
}

export interface DueFires {
  /** Due times to fire now, oldest first. */
  fire: Date[];
  /** Due times dropped (missed and not caught up, or beyond MAX_FIRES); a lower bound after a long outage. */
  skipped: number;
  /** The next fire time after now (null if the expression has none). */
  next: Date | null;
}

/**
 * The fires of a schedule whose earliest unfired time is `from` (its stored next_run_at), at
 * database time `now`.
 */
export function dueFires(cron: Cron, from: Date, now: Date, catchUp: CatchUp): DueFires {
  const nowMs = now.getTime();
  // Forward from `from`: usually one or two steps. A long outage of a frequent schedule
  // stops after MAX_FIRES + 1 and takes the most recent ones counting back from now instead.
  let due: Date[] = [];
  let overflow = false;
  for (let t = nextAfter(cron, new Date(from.getTime() - 1)); t !== null && t.getTime() <= nowMs; t = nextAfter(cron, t)) {
    if (due.length === MAX_FIRES) {
      overflow = true;
      break;
    }
    due.push(t);
  }
  if (overflow) due = cron.previousRuns(MAX_FIRES, new Date(nowMs + 1)).reverse();
  const onTime = due.filter((t) => nowMs - t.getTime() <= ON_TIME_MS);
  const missed = due.slice(0, due.length - onTime.length);
  const caughtUp = catchUp === 'all' ? missed : catchUp === 'last' ? missed.slice(-1) : [];
  const fire = [...caughtUp, ...onTime].slice(-MAX_FIRES);
  return { fire, skipped: due.length - fire.length + (overflow ? 1 : 0), next: nextAfter(cron, now) };
}
