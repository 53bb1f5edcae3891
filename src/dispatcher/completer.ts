/**
 * Writes attempt outcomes in batches (group commit): while one statement is in flight, the
 * next outcomes gather. While the worker is busy (many tasks still running or waiting, so
 * nobody is waiting on this write to make progress) statements also start at most once per
 * busy window (the dispatcher's, from its finish rate): a statement (and its commit's flush to disk) costs Postgres and the main
 * thread as much as tens of rows, and CPU-bound tasks finishing a few at a time would
 * otherwise each pay for one, taking that CPU from the tasks. A quiet worker writes at once,
 * and the last outcomes of a busy spell go out as soon as it ends (nudge). Leases of tasks
 * waiting here are still extended by the dispatcher's heartbeat. Outcomes survive a lost connection: a failed write is
 * retried with backoff until it succeeds or the worker is forced to stop. If a statement is
 * refused for its data (SQLSTATE 22/23/54, not a connection or timeout), the batch is split so
 * one bad row cannot hold up or lose the others.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { settleAttempts, type Settled, type Settlement } from '../sql/settle.js';
import { releaseLeases } from '../sql/release.js';
import { wakeMissedParents } from '../sql/wake-parents.js';
import type { SchemaNames } from '../db/schema.js';
import { isDataError } from '../db/errors.js';
import { retryDelayMs, type Backoff } from '../backoff.js';
import { ResultRejectedError, systemErrorJson } from '../errors.js';

const MAX_PER_STATEMENT = 1000;

/**
 * An attempt's outcome to write, or, with outcome 'release', its lease to hand back
 * (shutdown): the task becomes ready again, its attempt not counted. One object per task.
 */
export interface Pending extends Omit<Settlement, 'outcome'> {
  outcome: Settlement['outcome'] | 'release';
}

export class Completer {
  private buffer: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private lastWriteAt = 0;
  private stopped = false;
  /** Ends the busy-window wait early. */
  private wakeWindow: (() => void) | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly names: SchemaNames,
    private readonly backoff: Backoff,
    private readonly log: Logger,
    /** Called once the items are durably written (or given up on at a forced stop). */
    private readonly onWritten: (items: Pending[]) => void,
    /** While the worker has plenty of other tasks running: how long outcomes may gather (0: write at once). */
    private readonly busyWindowMs: () => number,
    /** Told which outcomes were recorded and the status each execution got (for worker events). */
    private readonly onSettled?: (settled: Settled[], items: Settlement[]) => void,
  ) {}

  add(item: Pending): void {
    this.buffer.push(item);
    if (!this.flushing) this.flushing = this.flushLoop();
  }

  /** The worker is no longer busy: write what is gathered without waiting out the window. */
  nudge(): void {
    const wake = this.wakeWindow;
    this.wakeWindow = undefined;
    wake?.();
  }

  /** Outcomes waiting to be written. */
  get pending(): number {
    return this.buffer.length;
  }

  /** Resolves once everything added so far is written. */
  async drain(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  /** Gives up retrying writes (forced shutdown); leases then expire and recovery takes over. */
  abandon(): void {
    this.stopped = true;
    this.nudge();
  }

  private async flushLoop(): Promise<void> {
    // Let outcomes that finish in this same turn of the event loop join the first statement.
    await new Promise((r) => setImmediate(r));
    try {
      while (this.buffer.length > 0) {
        const wait = this.lastWriteAt + this.busyWindowMs() - performance.now();
        if (wait > 0 && this.buffer.length < MAX_PER_STATEMENT && !this.stopped) {
          await new Promise<void>((r) => {
            const timer = setTimeout(() => {
              this.wakeWindow = undefined;
              r();
            }, wait);
            this.wakeWindow = () => {
              clearTimeout(timer);
              r();
            };
          });
        }
        this.lastWriteAt = performance.now();
        const items = this.buffer.splice(0, MAX_PER_STATEMENT);
        await this.write(items);
        this.onWritten(items);
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private async write(items: Pending[]): Promise<void> {
    const settlements: Settlement[] = [];
    const releases: Pending[] = [];
    for (const i of items) {
      if (i.outcome === 'release') releases.push(i);
      else settlements.push(i as Settlement);
    }
    // Parent workflows to check again once the settles have committed (see sql/wake-parents.ts).
    const missedParents: string[] = [];
    for (let attempt = 0; ; attempt++) {
      try {
        if (settlements.length > 0) await this.settle(settlements, missedParents);
        if (releases.length > 0) {
          await releaseLeases(
            this.pool,
            this.names,
            releases.map((r) => r.id),
            releases.map((r) => r.leaseToken),
          );
        }
        break;
      } catch (err) {
        if (this.stopped) {
          this.log.error(
            { err, tasks: items.length },
            'could not write outcomes before a forced stop; their leases will expire and be recovered',
          );
          return;
        }
        const delay = retryDelayMs(attempt);
        this.log.warn({ err, tasks: items.length, retryInMs: delay }, 'writing task outcomes failed; retrying');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    // Apart from the settles: they have committed, and running them again would find their leases gone.
    for (let attempt = 0; missedParents.length > 0; attempt++) {
      try {
        await wakeMissedParents(this.pool, this.names, missedParents);
        return;
      } catch (err) {
        if (this.stopped) {
          this.log.error({ err, workflows: missedParents }, 'could not check these workflows for a wake-up before a forced stop');
          return;
        }
        const delay = retryDelayMs(attempt);
        this.log.warn(
          { err, workflows: missedParents.length, retryInMs: delay },
          'checking parent workflows for a wake-up failed; retrying',
        );
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private async settle(items: Settlement[], missedParents: string[]): Promise<void> {
    try {
      const settled = await settleAttempts(this.pool, this.names, items, this.backoff, missedParents);
      this.onSettled?.(settled, items);
      if (settled.length < items.length) {
        const ok = new Set(settled.map((s) => s.id));
        const stale = items.filter((i) => !ok.has(i.id)).map((i) => i.id);
        this.log.info({ ids: stale }, 'outcomes discarded: these executions were cancelled or their lease was taken over');
      }
    } catch (err) {
      if (!isDataError(err)) throw err; // retried by write()
      if (items.length === 1) {
        // The database refused this one outcome (e.g. a result too large for jsonb): record why.
        const [item] = items;
        const errorJson = systemErrorJson(
          new ResultRejectedError(`the database refused to store this attempt's outcome: ${(err as Error).message}`),
        );
        const rejected = { ...item!, outcome: 'fatal' as const, resultJson: null, errorJson };
        this.onSettled?.(await settleAttempts(this.pool, this.names, [rejected], this.backoff, missedParents), [rejected]);
        return;
      }
      const half = Math.ceil(items.length / 2);
      await this.settle(items.slice(0, half), missedParents);
      await this.settle(items.slice(half), missedParents);
    }
  }
}
