/**
 * Prometheus metrics of a Rhythm instance (prom-client, in a registry of its own unless one is
 * given). Workers record into it through QueueMetrics: per queue, a series object per task name
 * whose label children are resolved once, so a task costs a few increments and two histogram
 * observations, no label look-up and no SQL. Workers of a Rhythm that never asked for metrics
 * get no QueueMetrics at all and skip every one of these calls.
 *
 * Queue depth comes from Postgres, by one statement per scrape at most, cached for
 * `depthCacheMs` (default 5 s), so frequent scrapes or several scrapers cost one read.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { SchemaNames } from '../db/schema.js';
import { queueDepths, type QueueDepth } from '../sql/queue-depth.js';
import { RhythmValidationError } from '../errors.js';
import { checkInt, checkKnownKeys, describe } from '../validate.js';

export interface MetricsOptions {
  /** A prom-client registry to register into (default: a new one, for this Rhythm alone). */
  registry?: Registry;
  /** How long one read of the queue depth serves scrapes (ms, default 5,000). */
  depthCacheMs?: number;
}

const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const WAIT_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600];
const SIZE_BUCKETS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];
const DEPTH_STATUSES = ['scheduled', 'queued', 'running'] as const;

/** The label children of one (queue, task name): what a task's hot path touches. */
export class TaskSeries {
  readonly started: Counter.Internal;
  readonly completed: Counter.Internal;
  readonly failed: Counter.Internal;
  readonly retried: Counter.Internal;
  readonly cancelled: Counter.Internal;
  readonly runSeconds: Histogram.Internal<string>;
  readonly waitSeconds: Histogram.Internal<string>;
  readonly inFlight: Gauge.Internal<string>;

  constructor(m: RhythmMetrics, queue: string, name: string) {
    this.started = m.started.labels(queue, name);
    this.completed = m.completed.labels(queue, name);
    this.failed = m.failed.labels(queue, name);
    this.retried = m.retried.labels(queue, name);
    this.cancelled = m.cancelled.labels(queue, name);
    this.runSeconds = m.runSeconds.labels(queue, name);
    this.waitSeconds = m.waitSeconds.labels(queue, name);
    this.inFlight = m.inFlight.labels(queue, name);
    // Shown at 0 from the start, so rate() sees the first increment.
    for (const c of [this.started, this.completed, this.failed, this.retried, this.cancelled]) c.inc(0);
    this.inFlight.set(0);
  }

  /** An attempt was handed to what runs it, `waitedMs` after it was due. */
  start(waitedMs: number): void {
    this.started.inc();
    this.inFlight.inc();
    this.waitSeconds.observe(waitedMs / 1000);
  }

  /** A started attempt ended (any outcome) after running `runMs`. */
  end(runMs: number): void {
    this.inFlight.dec();
    this.runSeconds.observe(runMs / 1000);
  }

  /** The status an attempt's settle statement gave its execution. */
  settled(status: string): void {
    if (status === 'completed') this.completed.inc();
    else if (status === 'failed') this.failed.inc();
    else if (status === 'scheduled') this.retried.inc();
  }
}

/** Something whose busy threads the busy-threads gauge reads at scrape time. */
export interface ThreadGaugeSource {
  busyThreads(): number;
}

/** What the workers of one queue record into. */
export class QueueMetrics {
  private readonly tasks = new Map<string, TaskSeries>();
  private readonly claimSize: Histogram.Internal<string>;
  private readonly batchesSent: Counter.Internal;
  private readonly tasksPerBatch: Histogram.Internal<string>;
  /** Thread pools serving this queue in this process. */
  readonly pools = new Set<ThreadGaugeSource>();

  constructor(
    private readonly m: RhythmMetrics,
    readonly queue: string,
  ) {
    this.claimSize = m.claimSize.labels(queue);
    this.batchesSent = m.batchesSent.labels(queue);
    this.tasksPerBatch = m.tasksPerBatch.labels(queue);
  }

  /** The series of a task name (resolved once, then reused). */
  task(name: string): TaskSeries {
    let s = this.tasks.get(name);
    if (s === undefined) this.tasks.set(name, (s = new TaskSeries(this.m, this.queue, name)));
    return s;
  }

  /** A claim statement returned `count` tasks (0 included: how often claims find nothing). */
  claimed(count: number): void {
    this.claimSize.observe(count);
  }

  /** The thread pool sent a batch of `count` tasks to a thread. */
  batchSent(count: number): void {
    this.batchesSent.inc();
    this.tasksPerBatch.observe(count);
  }
}

interface DepthDeps {
  pool: pg.Pool;
  names: SchemaNames;
  log: Logger;
}

/** The metrics of one Rhythm: `r.metrics()`. */
export class RhythmMetrics {
  /** The registry holding Rhythm's metrics: serve it, or merge it into your own. */
  readonly registry: Registry;
  /** @internal */ readonly started: Counter<'queue' | 'task'>;
  /** @internal */ readonly completed: Counter<'queue' | 'task'>;
  /** @internal */ readonly failed: Counter<'queue' | 'task'>;
  /** @internal */ readonly retried: Counter<'queue' | 'task'>;
  /** @internal */ readonly cancelled: Counter<'queue' | 'task'>;
  /** @internal */ readonly runSeconds: Histogram<'queue' | 'task'>;
  /** @internal */ readonly waitSeconds: Histogram<'queue' | 'task'>;
  /** @internal */ readonly inFlight: Gauge<'queue' | 'task'>;
  /** @internal */ readonly claimSize: Histogram<'queue'>;
  /** @internal */ readonly batchesSent: Counter<'queue'>;
  /** @internal */ readonly tasksPerBatch: Histogram<'queue'>;
  private readonly queues = new Map<string, QueueMetrics>();
  private readonly depthCacheMs: number;
  private depthRead: { at: number; pending: boolean; depths: Promise<QueueDepth[] | undefined> } | undefined;
  private readonly depthReads: Counter;

  /** @internal Made by Rhythm.metrics(). */
  constructor(
    private readonly deps: DepthDeps,
    options: MetricsOptions = {},
  ) {
    checkMetricsOptions(options);
    this.registry = options.registry ?? new Registry();
    this.depthCacheMs = options.depthCacheMs ?? 5_000;
    const registers = [this.registry];
    const perTask = ['queue', 'task'] as const;
    const counter = (name: string, help: string) => new Counter({ name, help, labelNames: perTask, registers });
    this.started = counter('rhythm_executions_started_total', 'Attempts handed to a handler (main thread or thread)');
    this.completed = counter('rhythm_executions_completed_total', 'Executions completed (outcome written)');
    this.failed = counter('rhythm_executions_failed_total', 'Executions failed for good: no attempt left, or a non-retryable error');
    this.retried = counter('rhythm_executions_retried_total', 'Attempts that failed and were scheduled for a retry');
    this.cancelled = counter('rhythm_executions_cancelled_total', 'Executions cancelled while this process ran them');
    this.runSeconds = new Histogram({
      name: 'rhythm_execution_run_seconds',
      help: 'Run time of an attempt, from its start to its outcome',
      labelNames: perTask,
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.waitSeconds = new Histogram({
      name: 'rhythm_execution_wait_seconds',
      help: 'Time from when an attempt was due (enqueued, or its delay or backoff ended) to its start',
      labelNames: perTask,
      buckets: WAIT_BUCKETS,
      registers,
    });
    this.inFlight = new Gauge({
      name: 'rhythm_executions_in_flight',
      help: 'Attempts running now in this process',
      labelNames: perTask,
      registers,
    });
    this.claimSize = new Histogram({
      name: 'rhythm_claim_batch_size',
      help: 'Tasks returned by one claim statement',
      labelNames: ['queue'],
      buckets: [0, ...SIZE_BUCKETS],
      registers,
    });
    this.batchesSent = new Counter({
      name: 'rhythm_thread_pool_batches_sent_total',
      help: 'Batches of tasks sent to the threads',
      labelNames: ['queue'],
      registers,
    });
    this.tasksPerBatch = new Histogram({
      name: 'rhythm_thread_pool_batch_size',
      help: 'Tasks per batch sent to a thread',
      labelNames: ['queue'],
      buckets: SIZE_BUCKETS,
      registers,
    });
    const queues = this.queues;
    new Gauge({
      name: 'rhythm_thread_pool_busy_threads',
      help: 'Threads of the pool running a task now',
      labelNames: ['queue'],
      registers,
      collect() {
        this.reset();
        for (const [queue, q] of queues) {
          if (q.pools.size === 0) continue;
          let busy = 0;
          for (const p of q.pools) busy += p.busyThreads();
          this.set({ queue }, busy);
        }
      },
    });
    const depth = (): Promise<QueueDepth[] | undefined> => this.depths();
    new Gauge({
      name: 'rhythm_queue_depth',
      help: 'Executions per queue and status, read from Postgres (cached per scrape interval)',
      labelNames: ['queue', 'status'],
      registers,
      async collect() {
        const depths = await depth();
        if (depths === undefined) return; // the read failed: keep the last values
        this.reset();
        for (const q of queues.keys()) for (const status of DEPTH_STATUSES) this.set({ queue: q, status }, 0);
        for (const d of depths) for (const status of DEPTH_STATUSES) this.set({ queue: d.queue, status }, d[status]);
      },
    });
    new Gauge({
      name: 'rhythm_queue_oldest_waiting_seconds',
      help: 'Age of the oldest ready execution of the queue (0: none waiting)',
      labelNames: ['queue'],
      registers,
      async collect() {
        const depths = await depth();
        if (depths === undefined) return;
        this.reset();
        for (const q of queues.keys()) this.set({ queue: q }, 0);
        for (const d of depths) this.set({ queue: d.queue }, d.oldestWaitingSeconds);
      },
    });
    this.depthReads = new Counter({
      name: 'rhythm_queue_depth_reads_total',
      help: 'Queue depth statements run for scrapes (at most one per cache interval)',
      registers,
    });
  }

  /** The metrics in Prometheus' text format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** The content type of text(). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** @internal What the workers of `queue` record into. */
  forQueue(queue: string): QueueMetrics {
    let q = this.queues.get(queue);
    if (q === undefined) this.queues.set(queue, (q = new QueueMetrics(this, queue)));
    return q;
  }

  /** The queue depths, read at most once per depthCacheMs; undefined if the read failed. */
  private depths(): Promise<QueueDepth[] | undefined> {
    const now = performance.now();
    const last = this.depthRead;
    // A read still running serves every gauge of the scrape (and concurrent scrapes) too.
    if (last !== undefined && (last.pending || now - last.at < this.depthCacheMs)) return last.depths;
    this.depthReads.inc();
    const read = {
      at: now,
      pending: true,
      depths: queueDepths(this.deps.pool, this.deps.names)
        .catch((err: unknown) => {
          this.deps.log.warn({ err }, 'could not read the queue depth for the metrics; serving the last values');
          return undefined;
        })
        .finally(() => (read.pending = false)),
    };
    this.depthRead = read;
    return read.depths;
  }
}

function checkMetricsOptions(options: MetricsOptions): void {
  if (options === null || typeof options !== 'object')
    throw new RhythmValidationError(`metrics options must be an object, got ${describe(options)}`);
  checkKnownKeys('metrics', options, ['registry', 'depthCacheMs']);
  checkInt('depthCacheMs', options.depthCacheMs, 0, 3_600_000);
  // Duck-typed: the application may hold another copy of prom-client than ours.
  const registry = options.registry as { registerMetric?: unknown; metrics?: unknown } | undefined;
  if (
    registry !== undefined &&
    (registry === null || typeof registry.registerMetric !== 'function' || typeof registry.metrics !== 'function')
  ) {
    throw new RhythmValidationError(`metrics option registry must be a prom-client Registry, got ${describe(options.registry)}`);
  }
}
