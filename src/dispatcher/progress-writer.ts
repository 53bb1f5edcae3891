/**
 * Coalesces ctx.progress() reports of a worker's running tasks: only the latest value per
 * attempt is kept, and all of them are written in one statement at most every FLUSH_MS. A
 * handler reporting in a tight loop therefore costs one map update per call, not a statement.
 * Progress is informational: a failed write is logged and the next report tries again.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { writeProgress, type ProgressReport } from '../sql/progress.js';
import type { SchemaNames } from '../db/schema.js';

const FLUSH_MS = 250;

export class ProgressWriter {
  private pending = new Map<string, ProgressReport>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly db: pg.Pool,
    private readonly names: SchemaNames,
    private readonly log: Logger,
  ) {}

  /** Keeps `json` as the attempt's latest progress, to be written at the next flush. */
  report(id: string, leaseToken: string, json: string): void {
    if (this.closed) return;
    this.pending.set(leaseToken, { id, leaseToken, json });
    this.schedule();
  }

  /** Stops writing; waits for a write in flight. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.pending.clear();
    await this.writing;
  }

  private schedule(): void {
    if (this.timer !== undefined || this.writing !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const reports = [...this.pending.values()];
      this.pending = new Map();
      this.writing = writeProgress(this.db, this.names, reports)
        .then(
          () => undefined,
          (err) => this.log.warn({ err, tasks: reports.length }, 'writing task progress failed; the next report tries again'),
        )
        .finally(() => {
          this.writing = undefined;
          if (this.pending.size > 0 && !this.closed) this.schedule();
        });
    }, FLUSH_MS);
  }
}
