/**
 * Keeps the leases of a dispatcher's held tasks alive. Lease renewal is its own component
 * because its timing has nothing to do with claiming or settling: every held lease, whatever
 * its task is doing (waiting for a thread, running, or finished with its outcome still being
 * written), is extended in ONE statement (sql/heartbeat.ts) every third of the shortest lease
 * held, or at once when a handler calls ctx.heartbeat() or the LISTEN connection came back.
 * A lease the database no longer recognises (cancelled, or taken over after it expired) is
 * reported to the dispatcher, which aborts the handler that held it.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import type { SchemaNames } from '../db/schema.js';
import { extendLeases } from '../sql/heartbeat.js';

/** The part of a claimed task a lease needs. */
export interface HeldLease {
  id: string;
  leaseToken: string;
  /** This task's own lease length (it may be shorter than the worker's). */
  leaseMs: number;
}

export interface LeaseKeeperOptions {
  /** Heartbeats use asynchronous commit (see Rhythm.leasePool). */
  pool: pg.Pool;
  names: SchemaNames;
  /** The worker's lease length: an extension lasts this long unless the task has its own. */
  leaseMs: number;
  queue: string;
  log: Logger;
  /** The leases held right now (read at every heartbeat). */
  held: () => HeldLease[];
  /** These leases were not extended: they are no longer ours. */
  lost: (leaseTokens: string[]) => void;
}

/** Never more often than this, however short a lease. */
const MIN_INTERVAL_MS = 10;

export class LeaseKeeper {
  private timer: NodeJS.Timeout | undefined;
  private nextAt = Number.POSITIVE_INFINITY;
  /** A heartbeat "at once" is already scheduled: more requests join it. */
  private soonQueued = false;
  private stopped = false;

  constructor(private readonly o: LeaseKeeperOptions) {}

  start(): void {
    this.schedule();
  }

  /** Extend every held lease now (ctx.heartbeat(), or the LISTEN connection came back). */
  soon(): void {
    this.schedule(0);
  }

  /** A task with this lease was claimed: make sure its first extension comes in time. */
  claimed(leaseMs: number): void {
    if (performance.now() + leaseMs / 3 < this.nextAt) this.schedule(Math.floor(leaseMs / 3));
  }

  /** No more heartbeats (the dispatcher holds nothing any more). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(delayMs?: number): void {
    if (this.stopped) return;
    if (delayMs === 0) {
      if (this.soonQueued) return;
      this.soonQueued = true;
    }
    clearTimeout(this.timer);
    const delay = delayMs ?? this.interval();
    this.nextAt = performance.now() + delay;
    this.timer = setTimeout(() => {
      this.soonQueued = false;
      void this.beat().finally(() => this.schedule());
    }, delay);
  }

  /** A third of the shortest lease held, so two heartbeats can fail before one expires. */
  private interval(): number {
    let lease = this.o.leaseMs;
    for (const h of this.o.held()) lease = Math.min(lease, h.leaseMs);
    return Math.max(MIN_INTERVAL_MS, Math.floor(lease / 3));
  }

  private async beat(): Promise<void> {
    const held = this.o.held();
    if (held.length === 0) return;
    let kept: Set<string>;
    try {
      kept = await extendLeases(
        this.o.pool,
        this.o.names,
        held.map((h) => h.id),
        held.map((h) => h.leaseToken),
        this.o.leaseMs,
      );
    } catch (err) {
      this.o.log.warn({ err, queue: this.o.queue }, 'heartbeat failed; will retry at the next tick');
      return;
    }
    const lost = held.filter((h) => !kept.has(h.leaseToken)).map((h) => h.leaseToken);
    if (lost.length > 0) this.o.lost(lost);
  }
}
