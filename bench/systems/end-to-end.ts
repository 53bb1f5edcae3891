/**
 * Rhythm end to end, as an application uses it: a worker already running (and warmed) in the
 * same process as the producer; the clock runs from the first enqueueMany to the moment the
 * producer knows every task is done: its last wait() resolved (or waitMany, or, without
 * waits, the last id announced on the done channel to a separate LISTEN connection). The
 * history table then checks that every task completed after exactly one attempt.
 */
import { Worker, type Rhythm, type WorkerOptions } from '../../src/index.js';
import { epochMs, type StepProgress } from '../lib/common.js';
import { DoneCounter, type BenchDatabase } from '../lib/database.js';
import { cpuMeter } from '../lib/cpu.js';
import { countRhythmQueries, type QueryCount } from '../lib/query-counter.js';
import type { Run } from '../lib/context.js';
import { checkHistory, openRhythm, remainingInQueue } from './rhythm.js';

const CHUNK = 10_000;
const WAIT_TIMEOUT_MS = 600_000;

/** How the producer learns that its tasks are done. */
export type Waiting = 'wait' | 'waitMany' | 'none';

type WaitMany = (ids: string[], options?: { timeoutMs?: number }) => Promise<{ id: string; status: string }[]>;

/** r.waitMany when this version of Rhythm has it. */
export function waitManyOf(r: Rhythm): WaitMany | undefined {
  const fn = (r as unknown as { waitMany?: WaitMany }).waitMany;
  return typeof fn === 'function' ? fn.bind(r) : undefined;
}

export interface EndToEndOptions {
  n: number;
  worker: WorkerOptions;
  /** A module (runs on the worker's threads) or a main-thread function. */
  handler: URL | ((payload: unknown) => unknown);
  payload: (i: number) => unknown;
  waiting: Waiting;
  /** Tasks run (and waited for the same way) before the clock starts. */
  warmUp: number;
  /** Given each timed task's result, as its wait() or waitMany() resolved it. */
  onResult?: (result: unknown) => void;
  progress: StepProgress;
}

export interface EndToEndRun extends Run {
  /** Statements on Rhythm's connections between the first enqueue and the last result. */
  queries: QueryCount;
  /** SELECT calls naming the schema in pg_stat_statements (with --pg-stats). */
  pgSelects?: number;
}

export async function endToEnd(db: BenchDatabase, tag: string, o: EndToEndOptions): Promise<EndToEndRun> {
  const r = await openRhythm(db, tag);
  const queue = o.worker.queue ?? 'default';
  const done = new DoneCounter(db.url, r.names.doneChannel);
  const worker = new Worker(r, o.worker);
  worker.task('task', o.handler as URL);
  let running: Promise<void> | undefined;
  let stopCounting: (() => QueryCount) | undefined;
  let timer: NodeJS.Timeout | undefined;
  const waitMany = waitManyOf(r);
  if (o.waiting === 'waitMany' && !waitMany) throw new Error('this Rhythm has no waitMany()');
  try {
    await done.start();
    running = worker.start();
    const items = (from: number, to: number) => {
      const out = [];
      for (let i = from; i < to; i++) out.push({ name: 'task', payload: o.payload(i), options: { queue } });
      return out;
    };
    // Producer side: the ids of one enqueueMany call -> a promise of their executions.
    const track = (ids: string[], onDone: (k: number) => void): Promise<{ status: string }[]> => {
      if (o.waiting === 'wait') return Promise.all(ids.map((id) => r.wait(id, { timeoutMs: WAIT_TIMEOUT_MS }).then((e) => (onDone(1), e))));
      if (o.waiting === 'waitMany') return waitMany!(ids, { timeoutMs: WAIT_TIMEOUT_MS }).then((es) => (onDone(ids.length), es));
      return Promise.resolve([]);
    };

    o.progress.begin('warm-up', o.warmUp);
    const warmIds = await r.enqueueMany(items(0, o.warmUp));
    if (o.waiting === 'none') await done.waitFor(o.warmUp, { remaining: () => remainingInQueue(r) });
    else await track(warmIds, () => undefined);

    o.progress.begin(o.waiting === 'none' ? 'enqueue + drain' : `enqueue + drain + ${o.waiting}()`, o.n);
    let finished = 0;
    timer = setInterval(() => o.progress.update(o.waiting === 'none' ? done.count - o.warmUp : finished), 200);
    await db.stats?.reset();
    stopCounting = countRhythmQueries();
    const meter = cpuMeter(db);
    const t0 = epochMs();
    let first: string | undefined;
    const tracked: Promise<{ status: string }[]>[] = [];
    for (let i = 0; i < o.n; i += CHUNK) {
      const ids = await r.enqueueMany(items(o.warmUp + i, o.warmUp + Math.min(o.n, i + CHUNK)));
      first ??= ids[0];
      const p = track(ids, (k) => (finished += k));
      p.catch(() => undefined); // rejected later by Promise.all, not as unhandled while enqueueing
      tracked.push(p);
    }
    let notCompleted = 0;
    if (o.waiting === 'none') {
      await done.waitFor(o.warmUp + o.n, { remaining: () => remainingInQueue(r) });
    } else {
      for (const es of await Promise.all(tracked)) {
        notCompleted += es.filter((e) => e.status !== 'completed').length;
        if (o.onResult) for (const e of es) o.onResult((e as { result?: unknown }).result);
      }
    }
    const seconds = (epochMs() - t0) / 1000;
    const cpu = meter();
    const queries = stopCounting();
    stopCounting = undefined;
    clearInterval(timer);
    o.progress.update(o.n);
    const pgSelects = await db.stats?.selects(r.names.schema);
    const check = await checkHistory(r, first!);
    return {
      rate: o.n / seconds,
      seconds,
      done: check.completed,
      once: check.completed === o.n && check.notOnce === 0 && notCompleted === 0,
      cpu,
      queries,
      pgSelects,
    };
  } finally {
    clearInterval(timer);
    stopCounting?.();
    await done.stop();
    await worker.stop({ timeoutMs: 5_000 }).catch(() => undefined);
    await running?.catch(() => undefined);
    await r.shutdown({ timeoutMs: 1_000 }).catch(() => undefined);
    await db.dropSchema(r.names.schema).catch(() => undefined);
  }
}
