/**
 * The Rhythm application: its connection pools on one schema, the producer API (enqueue, get,
 * wait, waitMany), the admin API (status, list, retry, cancel), the internal worker, and the
 * lifecycle of every Worker created on it.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { createLogger, maskUrl } from './logger.js';
import { handleShutdownSignals } from './lifecycle/signals.js';
import { schemaNames, type SchemaNames } from './db/schema.js';
import { migrate, migrationStatus, type MigrationStatus } from './db/migrate.js';
import { environmentOrDefault } from './config/resolve.js';
import { createPool, DEFAULT_TIMEOUTS, type ConnectionTimeouts } from './db/connections.js';
import { inTransaction } from './db/transaction.js';
import { Listener } from './db/listener.js';
import { openDatabase } from './db/local.js';
import type { EmbeddedServer } from './db/embedded.js';
import { enqueueRows, type EnqueueRow } from './sql/enqueue.js';
import { enqueueUnique, enqueueUniqueMany } from './sql/enqueue-unique.js';
import { tracedEnqueue } from './observability/tracing.js';
import { RhythmMetrics, type MetricsOptions, type QueueMetrics } from './observability/metrics.js';
import { startMetricsServer, type MetricsServer, type MetricsServerOptions } from './observability/metrics-server.js';
import { checkBackoff, isTaskDefinition, type TaskDefinition, type TaskExecutionId } from './task-definition.js';
import * as cronSchedules from './schedules/schedules.js';
import type { Schedule, ScheduleOptions, SyncResult } from './schedules/schedules.js';
import type { ScheduleChange } from './sql/schedule-upsert.js';
import { getExecutions } from './sql/get.js';
import { cancelExecutions } from './sql/cancel.js';
import { startWorkflowRow } from './sql/workflow-start.js';
import { sendSignal } from './sql/workflow-signal.js';
import { workflowDetails, type WorkflowDetails } from './sql/workflow-details.js';
import { listExecutions } from './sql/list.js';
import { retryExecutions } from './sql/retry.js';
import { statusByQueue } from './sql/status.js';
import { queueActivity, type QueueActivity } from './sql/queue-activity.js';
import { listWorkflows } from './sql/workflow-list.js';
import {
  checkListOptions,
  checkActivityOptions,
  checkRetryOptions,
  checkStatusOptions,
  checkTarget,
  checkWorkflowListOptions,
  encodeCursor,
  type ActivityOptions,
  type WorkflowListOptions,
  type WorkflowPage,
  type CancelResult,
  type ExecutionFilter,
  type ExecutionPage,
  type ListOptions,
  type RetryOptions,
  type RetryResult,
  type StatusOptions,
  type StatusReport,
} from './admin.js';
import { controlStatus, pauseQueue, resumeQueue, setQueueRateLimit, type ControlStatus, type RateLimit } from './sql/controls.js';
import { readFinished } from './sql/finished.js';
import type { Backoff } from './backoff.js';
import { InternalWorker, type InternalWorkerOptions } from './internal/internal-worker.js';
import { Waiters } from './wait.js';
import { encodeJson } from './json.js';
import { CancelledError, RhythmError, RhythmValidationError, systemErrorJson } from './errors.js';
import {
  MAX_DELAY_MS,
  checkBool,
  checkDatabaseUrl,
  checkDate,
  checkFlowName,
  checkGroup,
  checkId,
  checkInt,
  checkKnownKeys,
  checkQueueName,
  checkRateLimit,
  checkSchemaName,
  checkStorableText,
  checkTaskName,
  describe,
} from './validate.js';
import type { EnqueueItem, EnqueueOptions, Execution, StartWorkflowOptions, UniqueMode, WaitOptions } from './types.js';

export interface RhythmOptions {
  /**
   * Postgres URL; default RHYTHM_DATABASE_URL, then DATABASE_URL, and with none of them the
   * embedded Postgres on the local data folder (RHYTHM_DATA_DIR, default ./.rhythm/pgdata).
   */
  databaseUrl?: string;
  /** Schema holding Rhythm's tables (default RHYTHM_SCHEMA, else "rhythm"); several apps can share a database. */
  schema?: string;
  /** Apply pending migrations at init (default true). */
  autoMigrate?: boolean;
  /** Connections in the pool (default 10). */
  poolSize?: number;
  /** A pino logger; default: pino on stdout at RHYTHM_LOG_LEVEL (default "info"), human-readable on a terminal (RHYTHM_LOG_FORMAT). */
  logger?: Logger;
  /** Retry delay after a failed attempt: base * 2^(attempt-1), capped at max, with jitter (default 1 s, 1 h). */
  retryBackoff?: { baseMs?: number; maxMs?: number };
  /** Call shutdown() on SIGTERM/SIGINT, then exit; a second signal forces a fast stop (exit 130). Default false. */
  handleSignals?: boolean;
  /** Most bytes of one payload's JSON (default 16 MiB): larger ones are refused at enqueue. */
  maxPayloadBytes?: number;
  /** Connections for claims and lease extensions, shared by this instance's workers (default 4). */
  leasePoolSize?: number;
  /** Most time to open a database connection (default 10 s). */
  connectTimeoutMs?: number;
  /**
   * Most time one statement may run (default 30 s): the server cancels it, and a connection
   * that stays silent a little longer (a dead network) is dropped and replaced.
   */
  queryTimeoutMs?: number;
}

export interface ShutdownOptions {
  /** How long in-flight tasks may run before they are aborted and handed back (default 30 s). */
  timeoutMs?: number;
  /**
   * Give up on outcomes the database cannot take right now (it is down) instead of retrying
   * them: their leases expire and recovery runs those tasks again. For a forced exit.
   */
  force?: boolean;
}

/**
 * What a Worker needs from its Rhythm. The members marked internal stay out of the published
 * types (stripInternal): callers use the admin API, not the pools.
 */
export interface WorkerHost {
  /** @internal */
  readonly pool: pg.Pool;
  /** @internal */
  readonly leasePool: pg.Pool;
  /** @internal Qualified table and channel names of this instance's schema. */
  readonly names: SchemaNames;
  readonly log: Logger;
  readonly backoff: Backoff;
  /** @internal Workflow names registered on this instance's workers (see startWorkflow). */
  readonly localWorkflows: Set<string>;
  /** @internal */
  listener(): Promise<Listener>;
  /** @internal */
  track(worker: { stop(opts?: ShutdownOptions): Promise<void> }): () => void;
  /** @internal Where the workers of `queue` record metrics; undefined while metrics are off. */
  metricsFor(queue: string): QueueMetrics | undefined;
}

const ENQUEUE_OPTIONS = [
  'queue',
  'delayMs',
  'runAt',
  'priority',
  'maxAttempts',
  'timeoutMs',
  'visibilityTimeoutMs',
  'group',
  'backoff',
  'uniqueKey',
  'uniqueMode',
  'client',
] as const;
/** Longest uniqueKey accepted (a btree entry must stay well under a page). */
const MAX_UNIQUE_KEY = 1_000;
const INIT_OPTIONS = [
  'databaseUrl',
  'schema',
  'autoMigrate',
  'poolSize',
  'leasePoolSize',
  'logger',
  'retryBackoff',
  'handleSignals',
  'maxPayloadBytes',
  'connectTimeoutMs',
  'queryTimeoutMs',
] as const;
/** Most rows per enqueue statement. */
const ENQUEUE_CHUNK = 10_000;
/**
 * Most payload text per enqueue statement (in UTF-16 code units): the payloads travel as one
 * jsonb array, which Postgres caps at 256 MB. The binary form can be larger than the text (up
 * to 3 bytes of UTF-8 per unit; a one-digit number takes 12 bytes for its 2 characters "1,"),
 * so 16 Mi units stay under the cap whatever the payloads hold.
 */
const ENQUEUE_CHUNK_CHARS = 16 * 1024 * 1024;
/** Default most bytes of one payload's JSON (maxPayloadBytes). */
const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;
/** jsonb's own limit on one value. */
const JSONB_MAX_BYTES = 268_435_455;
/** Connections for wait()'s batched reads (opened on the first wait). */
const WAIT_POOL_SIZE = 2;

export class Rhythm implements WorkerHost {
  /** @internal The connection pool; the admin API (status, list, retry, cancel) covers what callers need. */
  readonly pool: pg.Pool;
  /**
   * @internal Connections for claims and lease extensions, with asynchronous commit: they wait for no
   * WAL flush, which keeps a disk flush off the wake-up path (enqueue-to-start). Safe: a claim
   * or extension lost in a server crash only means the task runs again (at-least-once), and
   * any settle commits (synchronously) after the claim it depends on, so it flushes that too.
   */
  readonly leasePool: pg.Pool;
  /** @internal Qualified table and channel names of this instance's schema. */
  readonly names: SchemaNames;
  readonly log: Logger;
  readonly backoff: Backoff;
  /** Most bytes of one payload's JSON, checked at enqueue. */
  readonly maxPayloadBytes: number;
  /** Connect and statement timeouts of every connection (see db/connections.ts). */
  readonly timeouts: ConnectionTimeouts;
  /**
   * @internal Workflow names registered on this instance's workers: startWorkflow accepts them
   * even before a worker has started and stored its sources in the database.
   */
  readonly localWorkflows = new Set<string>();
  private listening: Promise<Listener> | undefined;
  /** wait() and waitMany(), created with their pool on the first call. */
  private waiters: Waiters | undefined;
  /**
   * wait()'s reads run here, on connections of their own: a burst of waits must never queue
   * in front of outcome writes (the main pool) or claims and lease extensions (the lease
   * pool), or finished tasks would miss their heartbeats and run again. Reads are batched,
   * so two connections carry any number of waits.
   */
  private waitPool: pg.Pool | undefined;
  private internalWorker: InternalWorker | undefined;
  private readonly workers = new Set<{ stop(opts?: ShutdownOptions): Promise<void> }>();
  private shuttingDown: Promise<void> | undefined;
  private metricsState: RhythmMetrics | undefined;
  private readonly metricsServers = new Set<MetricsServer>();
  /** The embedded server init() started when no database was configured. */
  private embedded: EmbeddedServer | undefined;
  private removeSignalHandlers: (() => void) | undefined;

  private constructor(
    readonly databaseUrl: string,
    options: RhythmOptions,
  ) {
    this.names = schemaNames(options.schema ?? environmentOrDefault('schema'));
    this.log = options.logger ?? createLogger();
    this.maxPayloadBytes = options.maxPayloadBytes ?? MAX_PAYLOAD_BYTES;
    this.backoff = {
      baseMs: checkInt('retryBackoff.baseMs', options.retryBackoff?.baseMs, 0) ?? 1_000,
      maxMs: checkInt('retryBackoff.maxMs', options.retryBackoff?.maxMs, 0) ?? 3_600_000,
    };
    this.timeouts = {
      connectMs: options.connectTimeoutMs ?? DEFAULT_TIMEOUTS.connectMs,
      queryMs: options.queryTimeoutMs ?? DEFAULT_TIMEOUTS.queryMs,
    };
    this.pool = createPool(databaseUrl, this.timeouts, {
      max: checkInt('poolSize', options.poolSize, 1) ?? 10,
      application_name: 'rhythm',
    });
    const leaseSize = options.leasePoolSize ?? 4;
    // An idle client losing its connection (e.g. a Postgres restart) must not crash the process.
    this.leasePool = createPool(databaseUrl, this.timeouts, {
      max: leaseSize,
      // Kept open: a claim that has to open a connection (authentication, a new backend)
      // waits 10-150 ms on a busy machine, which is the whole latency budget many times over.
      min: Math.min(2, leaseSize),
      application_name: 'rhythm-lease',
      // Claims, heartbeats and progress reach executions and work_queue rows by key, never by a
      // scan. A prepared claim's plan is cached once made, and one made while the tables were
      // nearly empty (a worker's first claims) would scan the whole history for every claimed
      // row once they have grown, until autovacuum replans it: seconds per claim. With
      // sequential scans off, these statements take the index whatever the table looked like.
      options: '-c synchronous_commit=off -c enable_seqscan=off',
    });
    for (const p of [this.pool, this.leasePool]) p.on('error', (err) => this.idleConnectionLost(err));
  }

  /**
   * An idle pooled connection ended by the server. (pg attaches the whole client to the error:
   * log only what helps.) While shutting down, a connection the server ends (it may be
   * stopping too) is expected, not news: debug, not a warning.
   */
  private idleConnectionLost(err: Error & { code?: string }): void {
    this.log[this.shuttingDown ? 'debug' : 'warn']({ error: err.message, code: err.code }, 'idle database connection lost');
  }

  /** Connects, optionally migrates, and returns a ready Rhythm. */
  static async init(options: RhythmOptions = {}): Promise<Rhythm> {
    let url = checkInitOptions(options);
    let embedded: EmbeddedServer | undefined;
    if (url === undefined) {
      // No database configured: the embedded server on the local data folder, as the CLI does.
      const local = await openDatabase();
      embedded = local.embedded;
      url = local.url;
    }
    const r = new Rhythm(url, options);
    r.embedded = embedded;
    if (embedded)
      r.log.info({ dataDir: embedded.realDataDir }, 'no database configured: using the embedded Postgres on the local data folder');
    try {
      if (options.autoMigrate !== false) {
        const applied = await migrate(r.pool, r.names);
        if (applied.length > 0) r.log.info({ schema: r.names.schema, applied }, 'applied migrations');
      }
      await r.pool.query('SELECT 1');
    } catch (err) {
      await Promise.all([r.pool.end(), r.leasePool.end()]).catch(() => undefined);
      await embedded?.stop().catch(() => undefined);
      throw err;
    }
    r.log.info({ database: maskUrl(url), schema: r.names.schema }, 'rhythm ready');
    if (options.handleSignals) r.installSignalHandlers();
    return r;
  }

  /**
   * Enqueues one task by name, or by its definition (see defineTask: the payload type is
   * checked, the definition's defaults apply, and the id remembers the result type for wait).
   * Returns its execution id; with a uniqueKey, the id of the unfinished execution that holds it.
   */
  async enqueue<P, R>(task: TaskDefinition<P, R>, payload: NoInfer<P>, options?: EnqueueOptions): Promise<TaskExecutionId<R, P>>;
  async enqueue(name: string, payload: unknown, options?: EnqueueOptions): Promise<string>;
  async enqueue(task: string | TaskDefinition, payload: unknown, options: EnqueueOptions = {}): Promise<string> {
    const [name, merged] = withDefaults(task, options);
    const row = this.toRow(name, payload, merged, 'enqueue');
    const db = merged.client ?? this.pool;
    return tracedEnqueue([row], async (traceContext) => {
      if (merged.uniqueKey !== undefined)
        return enqueueUnique(db, this.names, row, merged.uniqueKey, merged.uniqueMode ?? 'keep', traceContext);
      // Outside a caller's transaction the statement may hand the task straight to an idle worker.
      const [id] = await enqueueRows(db, this.names, [row], traceContext, merged.client === undefined);
      return id!;
    });
  }

  /**
   * Enqueues many tasks in one statement; returns their ids in input order. An item's `name`
   * may be a task definition (its defaults apply, the item's options win). Items with a
   * `uniqueKey` get what one enqueue() each, in order, would give (the holder's id, or a
   * replaced payload), in a few more statements, all in one transaction.
   */
  async enqueueMany(items: EnqueueItem[], options: { client?: pg.ClientBase } = {}): Promise<string[]> {
    if (!Array.isArray(items)) throw new RhythmValidationError(`enqueueMany expects an array, got ${describe(items)}`);
    checkKnownKeys('enqueueMany', options, ['client']);
    checkClient(options.client);
    if (items.length === 0) return [];
    const rows: EnqueueRow[] = new Array(items.length);
    const keyed: { index: number; key: string; mode: UniqueMode }[] = [];
    // A plain loop, not map(): map skips the holes of a sparse array, which would go unnoticed.
    for (let i = 0; i < items.length; i++) {
      if (!(i in items)) throw new RhythmValidationError(`enqueueMany item ${i} is missing (the array has a hole there)`);
      const item = items[i]!;
      if (item === null || typeof item !== 'object')
        throw new RhythmValidationError(`enqueueMany item ${i} must be { name, payload, options }`);
      if (item.options !== undefined && (item.options === null || typeof item.options !== 'object')) {
        throw new RhythmValidationError(`enqueueMany item ${i}: options must be an object, got ${describe(item.options)}`);
      }
      if (item.options && 'client' in item.options) {
        throw new RhythmValidationError(
          `enqueueMany item ${i}: pass the client as enqueueMany(items, { client }), not in an item's options`,
        );
      }
      try {
        const [name, merged] = withDefaults(item.name, item.options ?? {});
        rows[i] = this.toRow(name, item.payload, merged, 'enqueueMany');
        if (merged.uniqueKey !== undefined) keyed.push({ index: i, key: merged.uniqueKey, mode: merged.uniqueMode ?? 'keep' });
      } catch (err) {
        if (err instanceof RhythmValidationError) throw new RhythmValidationError(`enqueueMany item ${i}: ${err.message}`);
        throw err;
      }
    }
    const keyedAt = new Set(keyed.map((k) => k.index));
    const plain = keyed.length === 0 ? rows : rows.filter((_, i) => !keyedAt.has(i));
    const chunks = plain.length === 0 ? [] : chunkRows(plain);
    // One span for the whole call, its context stored with every row.
    return tracedEnqueue(rows, async (traceContext) => {
      if (keyed.length === 0 && chunks.length === 1) return enqueueRows(options.client ?? this.pool, this.names, rows, traceContext);
      // Larger batches go in chunks (bounded statement size), and keyed items in statements of
      // their own, inside one transaction: all or none.
      const insert = async (client: pg.ClientBase) => {
        const plainIds: string[] = [];
        for (const chunk of chunks) plainIds.push(...(await enqueueRows(client, this.names, chunk, traceContext)));
        if (keyed.length === 0) return plainIds;
        const ids: string[] = new Array(rows.length);
        // Keyed items go in key order (ties in input order: a later duplicate still follows the
        // earlier one), in chunks bounded like the rest; a key taken by an earlier chunk is
        // seen by a later one, as within one statement.
        const sorted = [...keyed].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.index - b.index));
        let at = 0;
        for (const chunk of chunkRows(sorted.map((k) => rows[k.index]!))) {
          const part = sorted.slice(at, at + chunk.length);
          at += chunk.length;
          const partIds = await enqueueUniqueMany(
            client,
            this.names,
            part.map((k) => ({ row: rows[k.index]!, key: k.key, mode: k.mode })),
            traceContext,
          );
          for (const [j, k] of part.entries()) ids[k.index] = partIds[j]!;
        }
        let next = 0;
        for (let i = 0; i < ids.length; i++) if (ids[i] === undefined) ids[i] = plainIds[next++]!;
        return ids;
      };
      return options.client ? insert(options.client) : inTransaction(this.pool, insert);
    });
  }

  /** The execution with this id, or null if there is none (or it was pruned). */
  async get<R, P>(id: TaskExecutionId<R, P>): Promise<Execution<R, P> | null>;
  async get<R = unknown, P = unknown>(id: string): Promise<Execution<R, P> | null>;
  async get<R = unknown, P = unknown>(id: string): Promise<Execution<R, P> | null> {
    checkId(id);
    const found = await getExecutions(this.pool, this.names, [id]);
    return (found.get(id) as Execution<R, P> | undefined) ?? null;
  }

  /**
   * Resolves with the execution once it is completed, failed or cancelled (LISTEN/NOTIFY, no
   * polling; concurrent waits share batched reads). Rejects with WaitTimeoutError when
   * timeoutMs (default 60 s) passes first, counted from this call; with timeoutMs 0 it reads
   * the execution once and rejects at once if it has not finished.
   */
  wait<R, P>(id: TaskExecutionId<R, P>, options?: WaitOptions): Promise<Execution<R, P>>;
  wait<R = unknown, P = unknown>(id: string, options?: WaitOptions): Promise<Execution<R, P>>;
  wait<R = unknown, P = unknown>(id: string, options: WaitOptions = {}): Promise<Execution<R, P>> {
    // Not an async function: one promise per call instead of two (waits come by the thousand).
    let waiters: Waiters;
    let timeoutMs: number;
    try {
      checkId(id);
      timeoutMs = checkWaitOptions('wait', options);
      waiters = this.waitersFor();
    } catch (err) {
      return Promise.reject(err);
    }
    return waiters.wait(id, timeoutMs) as Promise<Execution<R, P>>;
  }

  /**
   * Resolves with the executions of these ids, in the same order (duplicates allowed), once
   * every one has finished. Rejects with WaitTimeoutError naming how many had not when
   * timeoutMs (default 60 s, for the whole call) passes, and with a RhythmError if an id does
   * not exist. timeoutMs 0 reads each once, as for wait().
   */
  async waitMany<R = unknown, P = unknown>(ids: readonly string[], options: WaitOptions = {}): Promise<Execution<R, P>[]> {
    if (!Array.isArray(ids)) throw new RhythmValidationError(`waitMany expects an array of execution ids, got ${describe(ids)}`);
    for (let i = 0; i < ids.length; i++) {
      if (!(i in ids)) throw new RhythmValidationError(`waitMany id ${i} is missing (the array has a hole there)`);
      try {
        checkId(ids[i]);
      } catch (err) {
        if (err instanceof RhythmValidationError) throw new RhythmValidationError(`waitMany id ${i}: ${err.message}`);
        throw err;
      }
    }
    const timeoutMs = checkWaitOptions('waitMany', options);
    // A copy: the caller may change its array while the call is pending.
    return (await this.waitersFor().waitMany(ids.slice(), timeoutMs)) as Execution<R, P>[];
  }

  /**
   * Cancels from any process: a queued or delayed execution never runs; a running one's
   * handler sees ctx.signal abort, and it keeps its attempt count and start time.
   *
   * `cancel(id)` returns false if that execution had already finished (or does not exist).
   * `cancel(ids)` or `cancel(filter)` acts on many in one statement and reports which were
   * cancelled and which ids were skipped; a filter selects among unfinished executions
   * (status: scheduled, queued, running) and must give at least one criterion.
   */
  cancel(id: string): Promise<boolean>;
  cancel(target: readonly string[] | ExecutionFilter): Promise<CancelResult>;
  async cancel(target: string | readonly string[] | ExecutionFilter): Promise<boolean | CancelResult> {
    const one = typeof target === 'string';
    if (one) checkId(target);
    const sel = one ? { ids: [target] } : checkTarget('cancel', target, ['scheduled', 'queued', 'running']);
    const error = systemErrorJson(new CancelledError('the execution was cancelled'));
    const { done, skipped } = await cancelExecutions(this.pool, this.names, sel, error);
    return one ? done.length > 0 : { cancelled: done, skipped };
  }

  /**
   * Runs failed or cancelled executions again: each becomes queued now as a new attempt, with
   * at least `options.attempts` (default 1) more attempts allowed, its attempt count and
   * attempt log kept. By ids (others are reported as skipped: completed, unfinished, missing)
   * or by a filter over failed and cancelled executions (default status: failed).
   */
  async retry(target: readonly string[] | ExecutionFilter, options: RetryOptions = {}): Promise<RetryResult> {
    const sel = checkTarget('retry', target, ['failed', 'cancelled']);
    const attempts = checkRetryOptions(options);
    if (!sel.ids && !sel.statuses) sel.statuses = ['failed'];
    const { done, skipped } = await retryExecutions(this.pool, this.names, sel, attempts);
    return { retried: done, skipped };
  }

  /**
   * One page of executions, newest first, optionally filtered. Pass `nextCursor` back as
   * `cursor` for the next page: pages do not shift when new executions arrive.
   */
  async list(options: ListOptions = {}): Promise<ExecutionPage> {
    const { sel, limit } = checkListOptions(options);
    // One row more than the page tells whether another page follows.
    const rows = await listExecutions(this.pool, this.names, sel, limit + 1);
    const items = rows.slice(0, limit);
    return { items, nextCursor: rows.length > limit ? encodeCursor(items.at(-1)!.id) : null };
  }

  /**
   * Counts per queue and per task name: scheduled, queued and running now; completed, failed
   * and cancelled within `windowMs` (default 1 hour); and the oldest waiting execution.
   */
  async status(options: StatusOptions = {}): Promise<StatusReport> {
    const windowMs = checkStatusOptions(options);
    const at = new Date();
    return { at, windowMs, queues: await statusByQueue(this.pool, this.names, windowMs) };
  }

  /**
   * Pauses a queue: no worker in any process starts another of its tasks until resume()
   * (tasks already running finish). Stored, so it holds across restarts; the queue need not
   * exist yet. Returns when it was paused (the first time, if it already was).
   */
  async pause(queue: string): Promise<Date> {
    return pauseQueue(this.pool, this.names, checkQueueName(queue));
  }

  /** Resumes a paused queue and wakes its workers. Returns false if it was not paused. */
  async resume(queue: string): Promise<boolean> {
    return resumeQueue(this.pool, this.names, checkQueueName(queue));
  }

  /**
   * Limits how often tasks of a queue start, across every process: at most `max` starts per
   * `intervalMs` on average, in bursts of at most `max` (a token bucket). null removes the limit.
   */
  async setRateLimit(queue: string, limit: RateLimit | null): Promise<void> {
    checkQueueName(queue);
    await setQueueRateLimit(this.pool, this.names, queue, checkRateLimit(limit));
  }

  /** Paused and rate-limited queues, and groups at their concurrency limit (for status output). */
  async queueControls(): Promise<ControlStatus> {
    return controlStatus(this.pool, this.names);
  }

  /**
   * Completions and failures per minute and the p50/p99 wait (due time to start) per queue,
   * over the executions finished within `windowMs` (default 1 hour): the dashboard's charts.
   */
  async queueActivity(options: ActivityOptions = {}): Promise<QueueActivity[]> {
    return queueActivity(this.pool, this.names, checkActivityOptions(options));
  }

  /** One page of workflow executions, newest first, each with what it waits for. */
  async listWorkflows(options: WorkflowListOptions = {}): Promise<WorkflowPage> {
    const { beforeId, limit } = checkWorkflowListOptions(options);
    const rows = await listWorkflows(this.pool, this.names, beforeId, limit + 1);
    const items = rows.slice(0, limit);
    return { items, nextCursor: rows.length > limit ? encodeCursor(items.at(-1)!.execution.id) : null };
  }

  /**
   * Creates or changes a cron schedule (by name). Internal workers fire it once per due time
   * across all processes. Re-declaring an unchanged schedule writes nothing and keeps its
   * next fire time. Throws RhythmValidationError for an invalid cron expression or time zone.
   */
  async schedule<P>(name: string, options: ScheduleOptions<P>): Promise<ScheduleChange> {
    return cronSchedules.schedule(this.pool, this.names, name, options as ScheduleOptions);
  }

  /** Deletes a schedule; false if there was none by that name. Executions it fired are kept. */
  async unschedule(name: string): Promise<boolean> {
    return cronSchedules.unschedule(this.pool, this.names, name);
  }

  /** Every schedule, by name, with its next fire times. */
  async schedules(): Promise<Schedule[]> {
    return cronSchedules.schedules(this.pool, this.names);
  }

  /**
   * Makes the stored schedules match a declared set (a config file's): creates and updates
   * those given, removes those an earlier sync declared and this one does not. Schedules made
   * with schedule() are left alone.
   */
  async syncSchedules(declared: Record<string, ScheduleOptions>): Promise<SyncResult> {
    return cronSchedules.syncSchedules(this.pool, this.names, declared);
  }

  /**
   * Starts a workflow (a .flow script registered on some worker with worker.workflow());
   * returns its execution id. `inputs` is the script's `Inputs`. wait(id) gives its result,
   * signal(id, ...) sends it signals, cancel(id) cancels it and everything it started.
   */
  async startWorkflow(name: string, inputs: unknown = null, options: StartWorkflowOptions = {}): Promise<string> {
    checkFlowName('workflow name', name);
    checkKnownKeys('startWorkflow', options, ['queue', 'priority', 'client']);
    checkClient(options.client);
    const row = {
      name,
      queue: checkQueueName(options.queue ?? 'default'),
      inputsJson: this.checkPayloadSize(encodeJson(inputs, 'inputs')),
      priority: checkInt('priority', options.priority, -2_147_483_648) ?? 0,
      knownHere: this.localWorkflows.has(name),
    };
    const id = await startWorkflowRow(options.client ?? this.pool, this.names, row);
    if (id === null) {
      throw new RhythmValidationError(
        `unknown workflow ${JSON.stringify(name)}: no worker has registered it (register it with worker.workflow(${JSON.stringify(name)}, file); a worker stores its workflows in the database when it starts)`,
      );
    }
    return id;
  }

  /**
   * Sends a signal to a running workflow: its next Signal.next(name) receives the payload.
   * Signals are kept until taken, first in, first out, also when sent before the script waits.
   */
  async signal(id: string, name: string, payload: unknown = null): Promise<void> {
    checkId(id);
    checkFlowName('signal name', name);
    const payloadJson = this.checkPayloadSize(encodeJson(payload, 'signal payload'));
    const sent = await sendSignal(this.pool, this.names, id, name, payloadJson);
    if (sent.target === null) throw new RhythmValidationError(`cannot signal execution ${id}: there is no such execution`);
    if (sent.target.kind !== 'workflow')
      throw new RhythmValidationError(`cannot signal execution ${id}: it is a task, and only workflows take signals`);
    if (sent.signalId === null)
      throw new RhythmError(`cannot signal workflow ${id}: it is already ${sent.target.status}, so the signal was not stored`);
  }

  /**
   * What a workflow is doing: its children (by call sequence, with their status), what its
   * current await waits for (children, signal names, the timer's due time) and the signals it
   * has not taken. Null if the execution is not a workflow (or does not exist).
   */
  async workflowDetails(id: string): Promise<WorkflowDetails | null> {
    checkId(id);
    return workflowDetails(this.pool, this.names, id);
  }

  /** The database schema this instance works in. */
  get schema(): string {
    return this.names.schema;
  }

  /**
   * Applies the pending migrations (what init does unless autoMigrate is false) and returns
   * their names; none when the schema is up to date.
   */
  async migrate(): Promise<string[]> {
    return migrate(this.pool, this.names);
  }

  /** Every migration this version knows, with when it was applied (null: pending). */
  async migrationStatus(): Promise<MigrationStatus[]> {
    return migrationStatus(this.pool, this.names);
  }

  /** Starts the internal worker in this process (promotion, cron schedules, lease recovery, pruning). */
  async startInternalWorker(options: InternalWorkerOptions = {}): Promise<InternalWorker> {
    if (this.internalWorker) throw new RhythmError('the internal worker is already running on this Rhythm instance');
    checkKnownKeys('startInternalWorker', options, ['tickMs', 'batchSize', 'retentionMs', 'failedRetentionMs', 'pruneIntervalMs']);
    checkInt('tickMs', options.tickMs, 1);
    checkInt('batchSize', options.batchSize, 1);
    checkInt('retentionMs', options.retentionMs, 0, MAX_DELAY_MS);
    checkInt('failedRetentionMs', options.failedRetentionMs, 0, MAX_DELAY_MS);
    checkInt('pruneIntervalMs', options.pruneIntervalMs, 1);
    const worker = new InternalWorker(this.pool, this.names, this.backoff, this.log, options);
    this.internalWorker = worker;
    worker.start();
    // A schedule created or changed in any process may fire before the next planned pass. If
    // this cannot listen, fires are still found at every tick: log, do not fail.
    this.listener()
      .then(async (l) => {
        await l.listenSchedules();
        l.on('schedule', () => worker.wake());
        l.on('reconnect', () => worker.wake());
      })
      .catch((err) => this.log.warn({ err }, 'cannot listen for schedule changes; they are picked up at the next internal worker tick'));
    return worker;
  }

  /**
   * Stops every worker (no new claims; in-flight tasks finish until timeoutMs, then are aborted
   * and handed back), the internal worker, the listener and the pool. Idempotent.
   */
  shutdown(options: ShutdownOptions = {}): Promise<void> {
    // Checked before anything starts: a mistyped option must not leave a half-begun shutdown.
    let timeoutMs: number;
    try {
      checkKnownKeys('shutdown', options, ['timeoutMs', 'force']);
      timeoutMs = checkInt('timeoutMs', options.timeoutMs, 0) ?? 30_000;
      if (options.force !== undefined && typeof options.force !== 'boolean') {
        throw new RhythmValidationError(`option force must be a boolean, got ${describe(options.force)}`);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.shuttingDown) {
      // A forced stop asked for during a graceful one (a second signal): the workers' stop escalates.
      if (options.force) for (const w of this.workers) void w.stop({ timeoutMs, force: true });
      return this.shuttingDown;
    }
    this.shuttingDown = (async () => {
      this.log.info({ timeoutMs }, 'shutting down');
      await Promise.all([...this.workers].map((w) => w.stop({ timeoutMs, force: options.force })));
      await this.internalWorker?.stop();
      this.waiters?.close(new RhythmError('Rhythm was shut down while waiting for this execution'));
      await Promise.all([...this.metricsServers].map((m) => m.close()));
      if (this.listening) await (await this.listening.catch(() => undefined))?.close();
      await Promise.all([this.pool.end(), this.leasePool.end(), this.waitPool?.end()]);
      // Stops the embedded server if this process started it (another process's is left running).
      await this.embedded?.stop();
      this.removeSignalHandlers?.();
      this.log.info('shut down');
    })();
    return this.shuttingDown;
  }

  /**
   * @internal The shared LISTEN connection, connected on first use. A failed first connection
   * is not kept: the next call tries again (pg-listen itself handles later reconnects).
   */
  listener(): Promise<Listener> {
    this.listening ??= (async () => {
      const l = new Listener(this.databaseUrl, this.names, this.log, this.timeouts);
      try {
        await l.start();
      } catch (err) {
        this.listening = undefined;
        await l.close().catch(() => undefined);
        throw err;
      }
      return l;
    })();
    return this.listening;
  }

  /**
   * The Prometheus metrics of this Rhythm (prom-client), created on the first call: the
   * options apply then (a registry to register into, the queue-depth cache). Workers started
   * after it record into it; until then metrics cost nothing. See docs/observability.md.
   */
  metrics(options?: MetricsOptions): RhythmMetrics {
    if (this.metricsState === undefined) {
      this.metricsState = new RhythmMetrics({ pool: this.pool, names: this.names, log: this.log }, options);
    } else if (options !== undefined) {
      throw new RhythmValidationError('metrics options can only be given on the first call of metrics() (the metrics already exist)');
    }
    return this.metricsState;
  }

  /**
   * Serves the metrics at http://host:port/metrics (default 127.0.0.1:9464) until close() or
   * shutdown(); turns metrics on if they were not. Start it before the workers.
   */
  async startMetricsServer(options: MetricsServerOptions = {}): Promise<MetricsServer> {
    if (this.shuttingDown) throw new RhythmError('cannot serve metrics: this Rhythm is shutting down');
    const server = await startMetricsServer(this.metrics(), options);
    if (this.shuttingDown) {
      // shutdown() began while it bound its port and has closed the others already.
      await server.close();
      throw new RhythmError('cannot serve metrics: this Rhythm is shutting down');
    }
    this.metricsServers.add(server);
    const close = server.close;
    return Object.assign(server, {
      close: () => {
        this.metricsServers.delete(server);
        return close();
      },
    });
  }

  /** @internal */
  metricsFor(queue: string): QueueMetrics | undefined {
    return this.metricsState?.forQueue(queue);
  }

  /** @internal A started worker, to stop at shutdown; the returned function forgets it. */
  track(worker: { stop(opts?: ShutdownOptions): Promise<void> }): () => void {
    if (this.shuttingDown) throw new RhythmError('cannot start a worker: this Rhythm is shutting down');
    this.workers.add(worker);
    return () => this.workers.delete(worker);
  }

  private waitersFor(): Waiters {
    if (this.shuttingDown) throw new RhythmError('cannot wait: this Rhythm is shut down');
    if (this.waiters) return this.waiters;
    // Reads executions by id only: never a sequential scan (see the lease pool), which a plan
    // cached while the table was small would otherwise make, testing every row against the ids.
    const pool = createPool(this.databaseUrl, this.timeouts, {
      max: WAIT_POOL_SIZE,
      application_name: 'rhythm-wait',
      options: '-c enable_seqscan=off',
    });
    pool.on('error', (err) => this.idleConnectionLost(err));
    this.waitPool = pool;
    this.waiters = new Waiters(
      async () => {
        const l = await this.listener();
        await l.listenDone();
        return l;
      },
      (ids) => readFinished(pool, this.names, ids),
    );
    return this.waiters;
  }

  private toRow(name: string, payload: unknown, options: EnqueueOptions, what: string): EnqueueRow {
    checkTaskName(name);
    if (options === null || typeof options !== 'object')
      throw new RhythmValidationError(`${what} options must be an object, got ${describe(options)}`);
    checkKnownKeys(what, options, ENQUEUE_OPTIONS);
    checkClient(options.client);
    const delayMs = checkInt('delayMs', options.delayMs, 0, MAX_DELAY_MS);
    const runAt = checkDate('runAt', options.runAt);
    if (delayMs !== undefined && runAt !== undefined) throw new RhythmValidationError('options delayMs and runAt cannot both be given');
    const backoff = checkBackoff('backoff', options.backoff);
    checkUniqueKey(options.uniqueKey, options.uniqueMode);
    return {
      name,
      queue: checkQueueName(options.queue ?? 'default'),
      payloadJson: this.checkPayloadSize(encodeJson(payload, 'payload')),
      priority: checkInt('priority', options.priority, -2_147_483_648) ?? 0,
      maxAttempts: checkInt('maxAttempts', options.maxAttempts, 1) ?? 3,
      timeoutMs: checkInt('timeoutMs', options.timeoutMs, 1) ?? null,
      leaseMs: checkInt('visibilityTimeoutMs', options.visibilityTimeoutMs, 1_000) ?? null,
      delayMs: delayMs ?? null,
      runAt: runAt ?? null,
      parentId: null,
      group: checkGroup(options.group) ?? null,
      backoffBaseMs: backoff.baseMs,
      backoffMaxMs: backoff.maxMs,
    };
  }

  /** Refuses a payload over maxPayloadBytes, naming the limit and how to change it. */
  private checkPayloadSize(json: string): string {
    // UTF-8 takes at most 3 bytes per UTF-16 code unit: most payloads need no count at all.
    if (json.length * 3 <= this.maxPayloadBytes) return json;
    const bytes = Buffer.byteLength(json, 'utf8');
    if (bytes > this.maxPayloadBytes) {
      throw new RhythmValidationError(
        `payload is ${bytes.toLocaleString('en-US')} bytes of JSON, more than the limit of ${this.maxPayloadBytes.toLocaleString('en-US')} (maxPayloadBytes): ` +
          "store large data elsewhere and enqueue a reference to it, or raise the limit with Rhythm.init({ maxPayloadBytes }) (at most 268,435,455, jsonb's own limit)",
      );
    }
    return json;
  }

  private installSignalHandlers(): void {
    const signals = handleShutdownSignals({ log: this.log, shutdown: (o) => this.shutdown(o) });
    this.removeSignalHandlers = () => signals.dispose();
  }
}

/**
 * Every init option, checked before anything connects; returns the configured database URL,
 * or undefined when none is (the embedded server is then used).
 */
function checkInitOptions(options: RhythmOptions): string | undefined {
  checkKnownKeys('Rhythm.init', options, INIT_OPTIONS);
  // An explicit value, even null, is what the caller meant: it is checked, not replaced by the environment.
  // The environment's value is checked as it is read, naming its variable.
  if (options.databaseUrl !== undefined) checkDatabaseUrl('option databaseUrl', options.databaseUrl);
  const url = options.databaseUrl ?? environmentOrDefault('databaseUrl');
  if (options.schema !== undefined) checkSchemaName(options.schema);
  checkBool('autoMigrate', options.autoMigrate);
  checkBool('handleSignals', options.handleSignals);
  checkInt('poolSize', options.poolSize, 1, 10_000);
  checkInt('leasePoolSize', options.leasePoolSize, 1, 10_000);
  checkInt('connectTimeoutMs', options.connectTimeoutMs, 100, 3_600_000);
  checkInt('queryTimeoutMs', options.queryTimeoutMs, 100, 86_400_000);
  checkInt('maxPayloadBytes', options.maxPayloadBytes, 2, JSONB_MAX_BYTES);
  const log = options.logger as unknown;
  if (
    log !== undefined &&
    (log === null ||
      typeof log !== 'object' ||
      ['info', 'warn', 'error', 'debug'].some((m) => typeof (log as Record<string, unknown>)[m] !== 'function'))
  ) {
    throw new RhythmValidationError(`option logger must be a pino logger (with info, warn, error and debug methods), got ${describe(log)}`);
  }
  const backoff = options.retryBackoff;
  if (backoff !== undefined) {
    checkKnownKeys('retryBackoff', backoff, ['baseMs', 'maxMs']);
    const base = checkInt('retryBackoff.baseMs', backoff.baseMs, 0) ?? 1_000;
    const max = checkInt('retryBackoff.maxMs', backoff.maxMs, 0) ?? 3_600_000;
    if (base > max) throw new RhythmValidationError(`option retryBackoff.baseMs (${base}) must not exceed retryBackoff.maxMs (${max})`);
  }
  return url;
}

/** A caller's client (for enqueue inside its transaction) must be a pg client or pool. */
function checkClient(client: unknown): void {
  if (client === undefined) return;
  if (client === null || typeof client !== 'object' || typeof (client as { query?: unknown }).query !== 'function') {
    throw new RhythmValidationError(
      `option client must be a pg client (or pool) with a query() method, e.g. from pool.connect(), got ${describe(client)}`,
    );
  }
}

/** Consecutive runs of rows, each within ENQUEUE_CHUNK rows and ENQUEUE_CHUNK_CHARS of payload. */
function chunkRows(rows: EnqueueRow[]): EnqueueRow[][] {
  const chunks: EnqueueRow[][] = [];
  let start = 0;
  let chars = 0;
  for (let i = 0; i < rows.length; i++) {
    const size = rows[i]!.payloadJson.length;
    if (i > start && (i - start === ENQUEUE_CHUNK || chars + size > ENQUEUE_CHUNK_CHARS)) {
      chunks.push(rows.slice(start, i));
      start = i;
      chars = 0;
    }
    chars += size;
  }
  chunks.push(start === 0 ? rows : rows.slice(start));
  return chunks;
}

/** A task's name and its options over the definition's defaults (an enqueue's own options win). */
function withDefaults(task: string | TaskDefinition, options: EnqueueOptions): [string, EnqueueOptions] {
  if (!isTaskDefinition(task)) return [task as string, options];
  if (options === null || typeof options !== 'object') return [task.name, options];
  return [task.name, { ...task.defaults, ...options }];
}

function checkUniqueKey(key: unknown, mode: unknown): void {
  if (key === undefined) {
    if (mode !== undefined)
      throw new RhythmValidationError(
        `option uniqueMode ${describe(mode)} needs a uniqueKey: without one there is nothing to keep or replace`,
      );
    return;
  }
  if (typeof key !== 'string' || key === '' || key.length > MAX_UNIQUE_KEY) {
    throw new RhythmValidationError(
      `option uniqueKey must be a non-empty string of at most ${MAX_UNIQUE_KEY} characters, got ${describe(key)}`,
    );
  }
  checkStorableText('option uniqueKey', key);
  if (mode !== undefined && mode !== 'keep' && mode !== 'replace') {
    throw new RhythmValidationError(`option uniqueMode must be 'keep' or 'replace', got ${describe(mode)}`);
  }
}

/** wait() and waitMany() options; returns timeoutMs. */
function checkWaitOptions(what: string, options: unknown): number {
  checkKnownKeys(what, options, ['timeoutMs']);
  return checkInt('timeoutMs', (options as { timeoutMs?: unknown }).timeoutMs, 0) ?? 60_000;
}
