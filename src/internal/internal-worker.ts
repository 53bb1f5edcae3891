/**
 * The internal worker (the seed's scheduler side): promotes due delayed tasks and retries
 * from scheduled_queue to work_queue, fires due cron schedules, recovers tasks whose lease
 * expired, recounts group-concurrency slots (a page of groups a pass), and prunes old history.
 * Every statement uses SKIP LOCKED, so it is safe to run in every process at once.
 *
 * It ticks every `tickMs`, and sooner when the earliest scheduled task or cron fire is due
 * before the next tick, so a short delay is not stretched to a whole tick; a changed schedule
 * wakes it at once (wake()).
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { promoteDue, msUntilNextDue } from '../sql/promote.js';
import { recoverExpired } from '../sql/recover.js';
import { pruneHistory, type Retention } from '../sql/prune.js';
import { msUntilNextSchedule } from '../sql/schedule-fire.js';
import { fireDueSchedules } from '../schedules/fire.js';
import { recountGroups } from '../sql/groups.js';
import type { Backoff } from '../backoff.js';
import type { SchemaNames } from '../db/schema.js';

export interface InternalWorkerOptions {
  /** Time between passes (default 1,000 ms): lease recovery happens within lease + one tick. */
  tickMs?: number;
  /** Rows per promote/recover statement (default 1,000). */
  batchSize?: number;
  /** Completed and cancelled executions older than this are deleted (default 7 days; 0 keeps them forever). */
  retentionMs?: number;
  /**
   * Failed executions older than this are deleted (default 30 days; 0 keeps them forever): a
   * retention of their own, so the dead letters outlive the completed history and can still be
   * listed and retried.
   */
  failedRetentionMs?: number;
  /** Time between pruning passes (default 60,000 ms). */
  pruneIntervalMs?: number;
}

export const DEFAULT_RETENTION_MS = 7 * 86_400_000;
export const DEFAULT_FAILED_RETENTION_MS = 30 * 86_400_000;
const PRUNE_BATCH = 500;
/** Pruning never holds up promotion and recovery for long: at most this many batches a pass. */
const PRUNE_BATCHES_PER_PASS = 10;
/** Never loop back to back, whatever the clocks say. */
const MIN_DELAY_MS = 5;
/** A schedule another process is firing is looked at again this soon (not every MIN_DELAY_MS). */
const OVERDUE_RECHECK_MS = 100;

export class InternalWorker {
  private readonly tickMs: number;
  private readonly batchSize: number;
  private readonly retention: Retention;
  private readonly pruneIntervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private lastPrune = 0;
  /** Where the next recount of group slots starts (null: at the first group). */
  private groupsFrom: { queue: string; group: string } | null = null;
  private stopped = false;
  /** wake() during a pass: plan again right after it. */
  private wokenDuringPass = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly names: SchemaNames,
    private readonly backoff: Backoff,
    private readonly log: Logger,
    options: InternalWorkerOptions,
  ) {
    this.tickMs = options.tickMs ?? 1_000;
    this.batchSize = options.batchSize ?? 1_000;
    this.retention = {
      retentionMs: options.retentionMs ?? DEFAULT_RETENTION_MS,
      failedRetentionMs: options.failedRetentionMs ?? DEFAULT_FAILED_RETENTION_MS,
    };
    this.pruneIntervalMs = options.pruneIntervalMs ?? 60_000;
  }

  start(): void {
    this.schedule(0);
  }

  /** Runs a pass now (a schedule changed: its next fire may be sooner than the planned pass). */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.wokenDuringPass = true;
      return;
    }
    clearTimeout(this.timer);
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One pass; exposed so tests can drive it deterministically. */
  async tick(): Promise<{ promoted: number; fired: number; recovered: number; pruned: number; groupsFixed: number }> {
    const fired = await fireDueSchedules(this.pool, this.names, this.log, () => this.stopped);
    let promoted = 0;
    let recovered = 0;
    let pruned = 0;
    for (let n = this.batchSize; n === this.batchSize && !this.stopped; ) {
      n = await promoteDue(this.pool, this.names, this.batchSize);
      promoted += n;
    }
    for (let n = this.batchSize; n === this.batchSize && !this.stopped; ) {
      const rows = await recoverExpired(this.pool, this.names, this.batchSize, this.backoff);
      n = rows.length;
      recovered += n;
      for (const r of rows) this.log.warn({ id: r.id, worker: r.claimedBy, status: r.status }, 'recovered a task whose lease expired');
    }
    let groupsFixed = 0;
    if (!this.stopped) {
      const recount = await recountGroups(this.pool, this.names, this.batchSize, this.groupsFrom);
      this.groupsFrom = recount.next;
      groupsFixed = recount.fixed;
      if (recount.fixed > 0)
        this.log.warn({ groups: recount.fixed }, 'corrected the running count of groups whose slots were not given back');
    }
    const prunes = this.retention.retentionMs > 0 || this.retention.failedRetentionMs > 0;
    if (prunes && Date.now() - this.lastPrune >= this.pruneIntervalMs) {
      this.lastPrune = Date.now();
      let n = PRUNE_BATCH;
      for (let batches = 0; n === PRUNE_BATCH && batches < PRUNE_BATCHES_PER_PASS && !this.stopped; batches++) {
        n = await pruneHistory(this.pool, this.names, this.retention, PRUNE_BATCH);
        pruned += n;
      }
      if (n === PRUNE_BATCH) this.lastPrune = 0; // a backlog: carry on at the next pass
    }
    return { promoted, fired, recovered, pruned, groupsFixed };
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.pass().finally(() => (this.running = undefined));
    }, delayMs);
  }

  private async pass(): Promise<void> {
    let delay = this.tickMs;
    try {
      this.wokenDuringPass = false;
      const { promoted, fired, recovered, pruned } = await this.tick();
      if (promoted + fired + recovered + pruned > 0) this.log.debug({ promoted, fired, recovered, pruned }, 'internal worker pass');
      const dueInMs = await msUntilNextDue(this.pool, this.names);
      if (dueInMs !== null) delay = Math.max(MIN_DELAY_MS, Math.min(delay, Math.ceil(dueInMs)));
      // Still overdue right after this pass: another process holds it (it is firing it now).
      const fireInMs = await msUntilNextSchedule(this.pool, this.names);
      if (fireInMs !== null) delay = Math.min(delay, fireInMs <= 0 ? OVERDUE_RECHECK_MS : Math.max(MIN_DELAY_MS, Math.ceil(fireInMs)));
      if (this.wokenDuringPass) delay = MIN_DELAY_MS;
    } catch (err) {
      this.log.warn({ err }, 'internal worker pass failed; retrying at the next tick');
    }
    this.schedule(delay);
  }
}
