/**
 * Rhythm under test: a fresh schema per measurement, pre-enqueued no-op or CPU tasks, a
 * Worker configured by the bench, and the history table as the judge (every task completed,
 * exactly one attempt; the drain time runs from the first claim to the last completion).
 */
import { Rhythm, Worker, type WorkerOptions } from '../../src/index.js';
import { benchLogger, schemaSuffix, type StepProgress } from '../lib/common.js';
import { DoneCounter, type BenchDatabase, type StatementStat } from '../lib/database.js';
import { cpuMeter, type CpuSample } from '../lib/cpu.js';

export async function openRhythm(db: BenchDatabase, tag: string, poolSize?: number): Promise<Rhythm> {
  const schema = `bench_rh_${tag}_${schemaSuffix()}`;
  db.trackSchema(schema);
  return Rhythm.init({ databaseUrl: db.url, schema, logger: benchLogger(), poolSize });
}

/** Enqueues n tasks with enqueueMany in chunks; returns the first and last ids. */
export async function enqueueTasks(
  r: Rhythm,
  n: number,
  make: (i: number) => { name: string; payload: unknown; queue: string },
  progress?: StepProgress,
  chunk = 10_000,
): Promise<{ first: string; last: string }> {
  let first: string | undefined;
  let last: string | undefined;
  for (let i = 0; i < n; i += chunk) {
    const items = [];
    for (let j = i; j < Math.min(n, i + chunk); j++) {
      const t = make(j);
      items.push({ name: t.name, payload: t.payload, options: { queue: t.queue } });
    }
    const ids = await r.enqueueMany(items);
    first ??= ids[0];
    last = ids.at(-1);
    progress?.update(Math.min(n, i + chunk));
  }
  return { first: first!, last: last! };
}

export interface HistoryCheck {
  total: number;
  completed: number;
  /** Completed with more or fewer than one attempt. */
  notOnce: number;
  /** From the first claim to the last completion, by the database clock. */
  seconds: number;
}

/** Reads the history table for executions with id >= fromId. */
export async function checkHistory(r: Rhythm, fromId = '0'): Promise<HistoryCheck> {
  const res = await r.pool.query(
    `SELECT count(*)::int AS total,
            count(*) FILTER (WHERE status = 'completed')::int AS completed,
            count(*) FILTER (WHERE attempts <> 1)::int AS not_once,
            extract(epoch FROM max(finished_at) - min(started_at))::float8 AS seconds
     FROM ${r.names.executions} WHERE id >= $1`,
    [fromId],
  );
  const row = res.rows[0];
  return { total: row.total, completed: row.completed, notOnce: row.not_once, seconds: row.seconds ?? 0 };
}

export async function remainingInQueue(r: Rhythm): Promise<number> {
  const res = await r.pool.query(`SELECT count(*)::int AS n FROM ${r.names.workQueue}`);
  return res.rows[0].n;
}

export interface DrainOptions {
  n: number;
  /** "main": a no-op function handler; "module": a task module on the worker's threads. */
  mode: 'main' | 'module';
  module?: URL;
  payload?: (i: number) => unknown;
  worker: WorkerOptions;
  progress: StepProgress;
  label: string;
  /** Record Prometheus metrics (r.metrics() before the worker starts), scraped once after the drain. */
  metrics?: boolean;
}

export interface DrainResult {
  seconds: number;
  rate: number;
  check: HistoryCheck;
  /** Postgres time per statement during the drain (with --pg-stats). */
  statements?: StatementStat[];
  cpu: CpuSample;
}

/** Pre-enqueues n tasks, then starts a worker and waits until all are completed. */
export async function drain(db: BenchDatabase, tag: string, o: DrainOptions): Promise<DrainResult> {
  const r = await openRhythm(db, tag);
  const done = new DoneCounter(db.url, r.names.doneChannel);
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  try {
    const queue = o.worker.queue ?? 'default';
    o.progress.begin(`${o.label}: enqueue`, o.n);
    await enqueueTasks(r, o.n, (i) => ({ name: 'noop', payload: o.payload ? o.payload(i) : { i }, queue }), o.progress);
    await done.start();
    worker = new Worker(r, o.worker);
    if (o.mode === 'main') worker.task('noop', (p: unknown) => p ?? null);
    else worker.task('noop', o.module!);
    o.progress.begin(o.label, o.n);
    if (o.metrics) r.metrics();
    await db.stats?.reset();
    const meter = cpuMeter(db);
    running = worker.start();
    await done.waitFor(o.n, { remaining: () => remainingInQueue(r), onProgress: (c) => o.progress.update(c) });
    const cpu = meter();
    const statements = await db.stats?.top();
    await worker.stop();
    await running;
    if (o.metrics) await checkMetrics(r, queue, o.n);
    const check = await checkHistory(r);
    return { seconds: check.seconds, rate: check.completed / check.seconds, check, statements, cpu };
  } finally {
    await done.stop();
    await worker?.stop({ timeoutMs: 1_000 }).catch(() => undefined);
    await running?.catch(() => undefined);
    await r.shutdown({ timeoutMs: 1_000 }).catch(() => undefined);
    await db.dropSchema(r.names.schema).catch(() => undefined);
  }
}

/** The metrics saw what the history says: every task completed (else the row measured nothing). */
async function checkMetrics(r: Rhythm, queue: string, n: number): Promise<void> {
  const text = await r.metrics().text();
  const line = `rhythm_executions_completed_total{queue="${queue}",task="noop"} `;
  const counted = Number(
    text
      .split('\n')
      .find((l) => l.startsWith(line))
      ?.slice(line.length),
  );
  if (counted !== n) throw new Error(`metrics counted ${counted} completions of ${n}`);
}

export function describeWorker(o: WorkerOptions): string {
  const parts: string[] = [];
  if (o.threads !== undefined) parts.push(`threads ${o.threads}`);
  if (o.concurrency !== undefined) parts.push(`concurrency ${o.concurrency}`);
  if (o.batchSize !== undefined) parts.push(`batch ${o.batchSize}`);
  return parts.join(', ') || 'defaults';
}
