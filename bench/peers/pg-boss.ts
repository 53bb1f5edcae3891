/**
 * pg-boss 10 in a schema of its own: insert() for bulk enqueue, work() with batchSize for
 * draining. pg-boss 10 polls (no LISTEN/NOTIFY; the shortest polling interval is 0.5 s) and
 * waits out the rest of its interval after every fetch, so its rate is poll-bound: each
 * work() loop takes at most batchSize jobs per interval. We sweep batchSize and the number of
 * work() loops on the queue (v10's way to add concurrency).
 */
import PgBoss from 'pg-boss';
import { epochMs, schemaSuffix, sendChunks, sleep, type StepProgress } from '../lib/common.js';
import type { BenchDatabase } from '../lib/database.js';
import { cpuMeter, type CpuSample } from '../lib/cpu.js';

export const NAME = 'pg-boss';
export const QUEUE = 'noop';

export interface PgBossConfig {
  batchSize: number;
  /** work() loops on the queue. */
  workers: number;
  pollingIntervalSeconds: number;
}

export function describeConfig(c: PgBossConfig): string {
  return `batchSize ${c.batchSize}, work() x${c.workers}, poll ${c.pollingIntervalSeconds} s`;
}

export async function openBoss(url: string, schema: string): Promise<PgBoss> {
  const boss = new PgBoss({ connectionString: url, schema, supervise: false, schedule: false, migrate: true, max: 10 });
  boss.on('error', () => undefined);
  await boss.start();
  await boss.createQueue(QUEUE);
  return boss;
}

export async function openSchema(db: BenchDatabase, tag: string): Promise<{ schema: string; boss: PgBoss }> {
  const schema = `bench_pb_${tag}_${schemaSuffix()}`;
  db.trackSchema(schema);
  return { schema, boss: await openBoss(db.url, schema) };
}

export async function closeBoss(boss: PgBoss): Promise<void> {
  await boss.stop({ graceful: false, wait: true, timeout: 1_000 }).catch(() => undefined);
}

/** insert() in chunks of 10,000 (`parallel` calls at once); returns the seconds spent. */
export function insertJobs(boss: PgBoss, n: number, progress?: StepProgress, parallel = 1): Promise<number> {
  return sendChunks(
    n,
    10_000,
    parallel,
    (i) => ({ name: QUEUE, data: { i } }),
    (jobs) => boss.insert(jobs),
    progress,
  );
}

export async function notCompleted(db: BenchDatabase, schema: string): Promise<number> {
  const res = await db.query(`SELECT count(*)::int AS n FROM "${schema}".job WHERE name = $1 AND state <> 'completed'`, [QUEUE]);
  return res.rows[0].n;
}

export async function completed(db: BenchDatabase, schema: string): Promise<number> {
  const res = await db.query(`SELECT count(*)::int AS n FROM "${schema}".job WHERE name = $1 AND state = 'completed'`, [QUEUE]);
  return res.rows[0].n;
}

/** Pre-inserts n jobs, starts the work() loops, measures from the first batch to the last completion. */
export async function drain(
  db: BenchDatabase,
  n: number,
  c: PgBossConfig,
  progress: StepProgress,
  label: string,
): Promise<{ seconds: number; rate: number; done: number; cpu: CpuSample }> {
  const { schema, boss } = await openSchema(db, 's1');
  try {
    progress.begin(`${label}: enqueue`, n);
    await insertJobs(boss, n, progress);
    let ran = 0;
    let first = 0;
    progress.begin(label, n);
    const meter = cpuMeter(db);
    for (let w = 0; w < c.workers; w++) {
      await boss.work(QUEUE, { batchSize: c.batchSize, pollingIntervalSeconds: c.pollingIntervalSeconds }, async (jobs) => {
        if (ran === 0) first = epochMs();
        ran += jobs.length;
      });
    }
    const deadline = Date.now() + 600_000;
    while (ran < n) {
      progress.update(ran);
      if (Date.now() > deadline) throw new Error(`pg-boss: only ${ran} of ${n} jobs ran`);
      await sleep(50);
    }
    while ((await notCompleted(db, schema)) > 0) await sleep(5);
    const end = epochMs();
    const cpu = meter();
    progress.update(n);
    const done = await completed(db, schema);
    const seconds = (end - first) / 1000;
    return { seconds, rate: n / seconds, done, cpu };
  } finally {
    await closeBoss(boss);
    await db.dropSchema(schema).catch(() => undefined);
  }
}

export async function bulkEnqueue(
  db: BenchDatabase,
  n: number,
  parallel: number,
  progress: StepProgress,
): Promise<{ seconds: number; rate: number; stored: number }> {
  const { schema, boss } = await openSchema(db, 's5');
  try {
    const seconds = await insertJobs(boss, n, progress, parallel);
    const stored = await notCompleted(db, schema);
    return { seconds, rate: n / seconds, stored };
  } finally {
    await closeBoss(boss);
    await db.dropSchema(schema).catch(() => undefined);
  }
}

/** Latency configuration: the shortest poll pg-boss allows, batches large enough to keep up. */
export const LATENCY_CONFIG: PgBossConfig = { batchSize: 100, workers: 1, pollingIntervalSeconds: 0.5 };
