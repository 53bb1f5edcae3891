/**
 * graphile-worker 0.17 through its library API (run, makeWorkerUtils, addJobs), in a schema
 * of its own, tuned as its docs recommend for throughput: a local queue (batched fetch) and
 * batched completion (completeJobBatchDelay / failJobBatchDelay 0), with the concurrency swept.
 */
import { run, makeWorkerUtils, Logger, type Runner, type WorkerUtils } from 'graphile-worker';
import { epochMs, schemaSuffix, sendChunks, sleep, silentGraphileLogFactory, type StepProgress } from '../lib/common.js';
import type { BenchDatabase } from '../lib/database.js';
import { cpuMeter, type CpuSample } from '../lib/cpu.js';

export const NAME = 'graphile-worker';
const logger = new Logger(silentGraphileLogFactory);

export interface GraphileConfig {
  concurrency: number;
  /** localQueue.size; 0 or less disables the local queue. */
  localQueue: number;
  /** completeJobBatchDelay and failJobBatchDelay; -1 disables batching. */
  batchDelay: number;
}

export function describeConfig(c: GraphileConfig): string {
  return `concurrency ${c.concurrency}, localQueue ${c.localQueue > 0 ? c.localQueue : 'off'}, batch delays ${c.batchDelay}`;
}

export async function openSchema(db: BenchDatabase, tag: string): Promise<{ schema: string; utils: WorkerUtils }> {
  const schema = `bench_gw_${tag}_${schemaSuffix()}`;
  db.trackSchema(schema);
  const utils = await makeWorkerUtils({ connectionString: db.url, schema, logger });
  await utils.migrate();
  return { schema, utils };
}

/** addJobs in chunks of 10,000 (`parallel` calls at once); returns the seconds spent. */
export function addJobs(utils: WorkerUtils, n: number, progress?: StepProgress, parallel = 1): Promise<number> {
  return sendChunks(
    n,
    10_000,
    parallel,
    (i) => ({ identifier: 'noop', payload: { i } }),
    (specs) => utils.addJobs(specs),
    progress,
  );
}

export function startRunner(
  url: string,
  schema: string,
  c: GraphileConfig,
  noop: (payload: unknown) => void | Promise<void>,
): Promise<Runner> {
  return run(
    {
      noHandleSignals: true,
      logger,
      taskList: { noop: async (payload) => noop(payload) },
      preset: {
        worker: {
          connectionString: url,
          schema,
          concurrentJobs: c.concurrency,
          maxPoolSize: Math.max(10, c.concurrency + 2),
          ...(c.localQueue > 0 ? { localQueue: { size: c.localQueue } } : {}),
          completeJobBatchDelay: c.batchDelay,
          failJobBatchDelay: c.batchDelay,
        },
      },
    },
    undefined,
    [],
  );
}

export async function remaining(db: BenchDatabase, schema: string): Promise<number> {
  const res = await db.query(`SELECT count(*)::int AS n FROM "${schema}"._private_jobs`);
  return res.rows[0].n;
}

/** Pre-enqueues n no-op jobs, runs a worker, and measures from the first job start to the last deletion. */
export async function drain(
  db: BenchDatabase,
  n: number,
  c: GraphileConfig,
  progress: StepProgress,
  label: string,
): Promise<{ seconds: number; rate: number; done: number; cpu: CpuSample }> {
  const { schema, utils } = await openSchema(db, 's1');
  let runner: Runner | undefined;
  try {
    progress.begin(`${label}: enqueue`, n);
    await addJobs(utils, n, progress);
    let ran = 0;
    let first = 0;
    progress.begin(label, n);
    const meter = cpuMeter(db);
    runner = await startRunner(db.url, schema, c, () => {
      if (ran++ === 0) first = epochMs();
    });
    const deadline = Date.now() + 600_000;
    while (ran < n) {
      progress.update(ran);
      if (Date.now() > deadline) throw new Error(`graphile-worker: only ${ran} of ${n} jobs ran`);
      await sleep(100);
    }
    // Every handler has run; the jobs are gone once their batched completion is written.
    while ((await remaining(db, schema)) > 0) await sleep(5);
    const end = epochMs();
    const cpu = meter();
    progress.update(n);
    const seconds = (end - first) / 1000;
    return { seconds, rate: n / seconds, done: ran, cpu };
  } finally {
    await runner?.stop().catch(() => undefined);
    await Promise.resolve(utils.release()).catch(() => undefined);
    await db.dropSchema(schema).catch(() => undefined);
  }
}

/** Bulk enqueue rate of addJobs. */
export async function bulkEnqueue(
  db: BenchDatabase,
  n: number,
  parallel: number,
  progress: StepProgress,
): Promise<{ seconds: number; rate: number; stored: number }> {
  const { schema, utils } = await openSchema(db, 's5');
  try {
    const seconds = await addJobs(utils, n, progress, parallel);
    const stored = await remaining(db, schema);
    return { seconds, rate: n / seconds, stored };
  } finally {
    await Promise.resolve(utils.release()).catch(() => undefined);
    await db.dropSchema(schema).catch(() => undefined);
  }
}

/** Latency configuration: no local queue (it would hold jobs back), batched completion, 10 concurrent jobs. */
export const LATENCY_CONFIG: GraphileConfig = { concurrency: 10, localQueue: 0, batchDelay: 0 };
