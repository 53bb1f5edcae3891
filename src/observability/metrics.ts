/**
 * Prometheus metrics of a Rhythm instance (prom-client, in a registry of its own unless one is
 * given). Workers record into it through QueueMetrics: per queue, a series object per task name
 * holding plain numbers (counts, the in-flight figure, histogram buckets), so a task costs a few
 * additions and two short bucket searches. prom-client sees them only when scraped: its label
 * handling costs about a microsecond a call, several times a task's own dispatch cost, so the
 * counters and the gauge copy the numbers in their collect(), and the histograms are small
 * registry metrics of our own that print the same lines a prom-client histogram would. Workers
 * of a Rhythm that never asked for metrics get no QueueMetrics at all and skip every one of these.
 *
 * Queue depth comes from Postgres, by one statement per scrape at most, cached for
 * `depthCacheMs` (default 5 s), so frequent scrapes or several scrapers cost one read.
 */
import { createRequire } from 'node:module';
import type { Counter, Gauge, Metric, Registry } from 'prom-client';

// prom-client is loaded on the first r.metrics() call: loading it costs about as much as pg,
// and most processes (one-shot CLI commands, producers) never ask for metrics.
let promClient: typeof import('prom-client') | undefined;
const prom = () => (promClient ??= createRequire(import.meta.url)('prom-client') as typeof import('prom-client'));
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
const CLAIM_BUCKETS = [0, ...SIZE_BUCKETS];
const DEPTH_STATUSES = ['scheduled', 'queued', 'running'] as const;

/** One counter of one label set: a plain count, told to prom-client at scrape time. */
export class Tally {
  n = 0;
  private told = 0;

  constructor(
    private readonly child: Counter.Internal,
    /** Show it at 0 from the start, so rate() sees the first increment. */
    zero: boolean,
  ) {
    if (zero) child.inc(0);
  }

  /** Adds what was counted since the last scrape (prom-client's counter keeps the total). */
  flush(): void {
    const n = this.n;
    if (n > this.told) this.child.inc(n - this.told);
    this.told = n;
  }
}

/** One histogram of one label set, in plain numbers: the per-bucket counts (not cumulative), sum and count. */
export class HistogramSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    private readonly bounds: readonly number[],
    /** Its labels, one object for its life (prom-client caches their text by identity). */
    readonly labels: Readonly<Record<string, string>>,
  ) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(v: number): void {
    // The first bound at or above v, as prom-client's own histograms place it; above all: +Inf only.
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    if (i < b.length) this.counts[i]! += 1;
    this.sum += v;
    this.count++;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

/** A sample as prom-client's registry prints it; `sharedLabels` follow `labels` on the line. */
interface Sample {
  metricName: string;
  labels: Record<string, string | number>;
  sharedLabels?: Readonly<Record<string, string>>;
  value: number;
}

/**
 * A histogram metric registered as is: the registry calls getForPromString() (text) or get()
 * (JSON) and reset(), which is all it asks of a metric. Its lines are those of a prom-client
 * histogram: `_bucket` with `le` first (cumulative, `+Inf` last), then `_sum` and `_count`; a
 * label set appears once observed.
 */
class ScrapedHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    private readonly bounds: readonly number[],
    private readonly series: () => Iterable<HistogramSeries>,
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  async getForPromString(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: Sample[] }> {
    const bucket = `${this.name}_bucket`;
    const sum = `${this.name}_sum`;
    const count = `${this.name}_count`;
    const values: Sample[] = [];
    for (const s of this.series()) {
      if (s.count === 0) continue;
      const sharedLabels = s.labels;
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += s.counts[i]!;
        values.push({ metricName: bucket, labels: { le: this.bounds[i]! }, sharedLabels, value: acc });
      }
      values.push(
        { metricName: bucket, labels: { le: '+Inf' }, sharedLabels, value: s.count },
        { metricName: sum, labels: {}, sharedLabels, value: s.sum },
        { metricName: count, labels: {}, sharedLabels, value: s.count },
      );
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** The JSON shape: each sample's labels in one object. */
  async get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: Sample[] }> {
    const data = await this.getForPromString();
    data.values = data.values.map(({ metricName, labels, sharedLabels, value }) => ({
      metricName,
      labels: { ...labels, ...sharedLabels },
      value,
    }));
    return data;
  }

  reset(): void {
    for (const s of this.series()) s.reset();
  }
}

/** What one (queue, task name) records: what a task's hot path touches. */
export class TaskSeries {
  readonly started: Tally;
  readonly completed: Tally;
  readonly failed: Tally;
  readonly retried: Tally;
  readonly cancelled: Tally;
  readonly runSeconds: HistogramSeries;
  readonly waitSeconds: HistogramSeries;
  /** Attempts running now; the gauge reads it at scrape time. */
  inFlight = 0;
  /** @internal The gauge's child for this label set. */
  readonly inFlightGauge: Gauge.Internal<string>;

  constructor(m: RhythmMetrics, queue: string, name: string) {
    this.started = new Tally(m.started.labels(queue, name), true);
    this.completed = new Tally(m.completed.labels(queue, name), true);
    this.failed = new Tally(m.failed.labels(queue, name), true);
    this.retried = new Tally(m.retried.labels(queue, name), true);
    this.cancelled = new Tally(m.cancelled.labels(queue, name), true);
    const labels = { queue, task: name };
    this.runSeconds = new HistogramSeries(DURATION_BUCKETS, labels);
    this.waitSeconds = new HistogramSeries(WAIT_BUCKETS, labels);
    this.inFlightGauge = m.inFlight.labels(queue, name);
    this.inFlightGauge.set(0);
  }

  /** An attempt was handed to what runs it, `waitedMs` after it was due. */
  start(waitedMs: number): void {
    this.started.n++;
    this.inFlight++;
    this.waitSeconds.observe(waitedMs / 1000);
  }

  /** A started attempt ended (any outcome) after running `runMs`. */
  end(runMs: number): void {
    this.inFlight--;
    this.runSeconds.observe(runMs / 1000);
  }

  /** The status an attempt's settle statement gave its execution. */
  settled(status: string): void {
    if (status === 'completed') this.completed.n++;
    else if (status === 'failed') this.failed.n++;
    else if (status === 'scheduled') this.retried.n++;
  }

  /** An attempt was cancelled while this process held it. */
  cancel(): void {
    this.cancelled.n++;
  }
}

/** Something whose busy threads the busy-threads gauge reads at scrape time. */
export interface ThreadGaugeSource {
  busyThreads(): number;
}

/** What the workers of one queue record into. */
export class QueueMetrics {
  /** @internal The series per task name, read at scrape time. */
  readonly tasks = new Map<string, TaskSeries>();
  /** @internal */ readonly claimSize: HistogramSeries;
  /** @internal */ readonly batchesSent: Tally;
  /** @internal */ readonly tasksPerBatch: HistogramSeries;
  /** Thread pools serving this queue in this process. */
  readonly pools = new Set<ThreadGaugeSource>();

  constructor(
    private readonly m: RhythmMetrics,
    readonly queue: string,
  ) {
    const labels = { queue };
    this.claimSize = new HistogramSeries(CLAIM_BUCKETS, labels);
    // Shown once a batch is sent: a queue without threads has none.
    this.batchesSent = new Tally(m.batchesSent.labels(queue), false);
    this.tasksPerBatch = new HistogramSeries(SIZE_BUCKETS, labels);
  }

  /** The series of a task name (made once, then reused). */
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
    this.batchesSent.n++;
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
  /** @internal */ readonly inFlight: Gauge<'queue' | 'task'>;
  /** @internal */ readonly batchesSent: Counter<'queue'>;
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
    this.registry = options.registry ?? new (prom().Registry)();
    this.depthCacheMs = options.depthCacheMs ?? 5_000;
    const registers = [this.registry];
    const perTask = ['queue', 'task'] as const;
    const queues = this.queues;
    function* allTasks(): Generator<TaskSeries> {
      for (const q of queues.values()) yield* q.tasks.values();
    }
    const counter = (name: string, help: string, tally: (s: TaskSeries) => Tally) =>
      new (prom().Counter)({
        name,
        help,
        labelNames: perTask,
        registers,
        collect() {
          for (const s of allTasks()) tally(s).flush();
        },
      });
    const histogram = (
      name: string,
      help: string,
      labelNames: readonly string[],
      bounds: readonly number[],
      series: () => Iterable<HistogramSeries>,
    ) => new ScrapedHistogram(name, help, labelNames, bounds, series, this.registry);
    this.started = counter('rhythm_executions_started_total', 'Attempts handed to a handler (main thread or thread)', (s) => s.started);
    this.completed = counter('rhythm_executions_completed_total', 'Executions completed (outcome written)', (s) => s.completed);
    this.failed = counter(
      'rhythm_executions_failed_total',
      'Executions failed for good: no attempt left, or a non-retryable error',
      (s) => s.failed,
    );
    this.retried = counter('rhythm_executions_retried_total', 'Attempts that failed and were scheduled for a retry', (s) => s.retried);
    this.cancelled = counter('rhythm_executions_cancelled_total', 'Executions cancelled while this process ran them', (s) => s.cancelled);
    histogram(
      'rhythm_execution_run_seconds',
      'Run time of an attempt, from its start to its outcome',
      perTask,
      DURATION_BUCKETS,
      function* () {
        for (const s of allTasks()) yield s.runSeconds;
      },
    );
    histogram(
      'rhythm_execution_wait_seconds',
      'Time from when an attempt was due (enqueued, or its delay or backoff ended) to its start',
      perTask,
      WAIT_BUCKETS,
      function* () {
        for (const s of allTasks()) yield s.waitSeconds;
      },
    );
    this.inFlight = new (prom().Gauge)({
      name: 'rhythm_executions_in_flight',
      help: 'Attempts running now in this process',
      labelNames: perTask,
      registers,
      collect() {
        for (const s of allTasks()) s.inFlightGauge.set(s.inFlight);
      },
    });
    histogram('rhythm_claim_batch_size', 'Tasks returned by one claim statement', ['queue'], CLAIM_BUCKETS, function* () {
      for (const q of queues.values()) yield q.claimSize;
    });
    this.batchesSent = new (prom().Counter)({
      name: 'rhythm_thread_pool_batches_sent_total',
      help: 'Batches of tasks sent to the threads',
      labelNames: ['queue'],
      registers,
      collect() {
        for (const q of queues.values()) q.batchesSent.flush();
      },
    });
    histogram('rhythm_thread_pool_batch_size', 'Tasks per batch sent to a thread', ['queue'], SIZE_BUCKETS, function* () {
      for (const q of queues.values()) yield q.tasksPerBatch;
    });
    new (prom().Gauge)({
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
    new (prom().Gauge)({
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
    new (prom().Gauge)({
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
    this.depthReads = new (prom().Counter)({
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
