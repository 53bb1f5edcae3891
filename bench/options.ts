/** Command-line flags of `npm run bench -- [flags]`, with full and --quick defaults. */
import os from 'node:os';
import { parseArgs } from 'node:util';

export interface RhythmConfig {
  concurrency: number;
  batchSize: number;
}

export interface BenchOptions {
  quick: boolean;
  scenarios: Set<number>;
  peers: boolean;
  baselines: boolean;
  threads: number;
  repeat: number;
  /** Scenarios 1 and 2. */
  n: number;
  graphileN: number;
  pgbossN: number;
  rhythmMain: RhythmConfig[];
  rhythmThreads: RhythmConfig[];
  /** Rhythm thread-pool configs swept in scenario 3 beside the untuned worker (may be empty). */
  rhythmCpu: RhythmConfig[];
  rawLoops: number[];
  rawBatch: number;
  graphileConcurrency: number[];
  graphileLocalQueue: number;
  pgboss: { batchSize: number; workers: number }[];
  cpuN1: number;
  cpuN10: number;
  rounds1?: number;
  rounds10?: number;
  /** Tasks of scenario 8 (wait() at scale). */
  waitN: number;
  latencyN: number;
  latencyRate: number;
  idleMs: number;
  bulkN: number;
  bulkParallel: number[];
  scaleN: number;
  scaleProcs: number[];
  outDir?: string;
  dataDir?: string;
  databaseUrl?: string;
  pgSettings: Record<string, string>;
  progress: boolean;
  keep: boolean;
  pgStats: boolean;
}

const HELP = `npm run bench -- [flags]

Runs the Rhythm benchmark against raw baselines and peers on one Postgres, prints a Markdown
table and writes JSON + SVG to bench/results/. See bench/README.md.

  --quick                  small sizes, one configuration each (a few minutes)
  --only 1,2,...           run only these scenarios (1 no-op main, 2 no-op threads, 3 CPU,
                           4 latency, 5 bulk enqueue, 6 scaling, 7 CPU end to end with wait(),
                           8 wait() at scale, 9 group concurrency, 10 workflows);
                           --skip 4,6 to leave some out
  --no-peers               skip graphile-worker and pg-boss
  --no-baselines           skip raw Piscina / Tinypool / raw SQL
  --threads N              thread-pool size (default: available cores = ${os.availableParallelism()})
  --repeat N               interleaved rounds: every system of a scenario runs once a round
                           (A, B, then B, A, ...); rates and ratios are medians over the rounds,
                           printed with their spread (default 3)
  --n N                    tasks drained in scenarios 1 and 2 (default 50000; quick 5000)
  --graphile-n N           graphile-worker tasks in scenario 1 (default: --n)
  --pgboss-n N             pg-boss tasks in scenario 1 (default 20000; quick 2000; it polls)
  --rhythm-main C/B,...    Rhythm main-thread configs swept: concurrency/batchSize
  --rhythm-threads C/B,... Rhythm thread-pool configs swept for scenario 2
  --rhythm-cpu C/B,...     Rhythm thread-pool configs swept for scenario 3, beside the untuned
                           worker (default threads*8/threads*4, threads*32/threads*16; quick: none)
  --raw-loops 1,2          pipelines of the raw SQL baselines (each: a claiming and a settling connection)
  --graphile-concurrency 8,32,64   swept (localQueue --graphile-local-queue, default 500)
  --pgboss BxW,...         pg-boss batchSize x work() loops swept (default 500x2,500x4,1000x4)
  --cpu-n N                ~1 ms tasks in scenarios 3 and 7 (default 4000; quick 600)
  --cpu-n10 N              ~10 ms tasks in scenarios 3 and 7 (default 400; quick 60)
  --rounds-1ms R, --rounds-10ms R  sha256 rounds (default: calibrated on this machine)
  --wait-n N               tasks in scenario 8 (default 10000; quick 2000)
  --latency-n N            single enqueues per system in scenario 4 (default 1000; quick 100)
  --latency-rate R         enqueues per second (default 100)
  --idle-ms MS             window for the idle worker's CPU (default 5000; quick 1000)
  --bulk-n N               tasks enqueued in scenario 5 (default 100000; quick 20000)
  --bulk-parallel 1,2,4    bulk calls of 10,000 in flight at once, swept (quick: 2)
  --scale-n N              tasks in scenario 6 (default 50000; quick 5000)
  --scale-procs 1,2,4      worker processes in scenario 6
  --out DIR                results folder (default bench/results)
  --data-dir DIR           embedded Postgres data folder (default <tmp>/rhythm-bench/pgdata-<checkout>)
  --database-url URL       use this Postgres (default DATABASE_URL, else embedded)
  --pg-setting k=v         extra setting for the embedded server (repeatable)
  --no-progress            no progress output on stderr
  --pg-stats               record Postgres time per statement (pg_stat_statements) during
                           Rhythm's drains in scenarios 1-2, shown under the table, and count
                           scenario 8's SELECTs on the server as well
  --keep                   keep the bench schemas / database afterwards
`;

function ints(s: string | undefined, flag: string): number[] | undefined {
  if (s === undefined) return undefined;
  const out = s.split(',').map((x) => Number(x.trim()));
  if (out.some((x) => !Number.isInteger(x) || x < 1)) throw new Error(`${flag}: expected positive integers, got ${s}`);
  return out;
}

function int(s: string | undefined, flag: string): number | undefined {
  if (s === undefined) return undefined;
  const x = Number(s);
  if (!Number.isFinite(x) || x <= 0) throw new Error(`${flag}: expected a positive number, got ${s}`);
  return x;
}

function count(s: string | undefined, flag: string): number | undefined {
  if (s === undefined) return undefined;
  const x = Number(s);
  if (!Number.isInteger(x) || x < 1) throw new Error(`${flag}: expected a positive integer, got ${s}`);
  return x;
}

function pairs(s: string | undefined, sep: string, flag: string): [number, number][] | undefined {
  if (s === undefined) return undefined;
  return s.split(',').map((p) => {
    const [a, b] = p.split(sep).map((x) => Number(x.trim()));
    if (!Number.isInteger(a) || !Number.isInteger(b) || a! < 1 || b! < 1) throw new Error(`${flag}: expected A${sep}B pairs, got ${s}`);
    return [a!, b!];
  });
}

export function parseOptions(argv: string[]): BenchOptions | 'help' {
  const { values: v } = parseArgs({
    args: argv,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      quick: { type: 'boolean' },
      only: { type: 'string' },
      skip: { type: 'string' },
      'no-peers': { type: 'boolean' },
      'no-baselines': { type: 'boolean' },
      threads: { type: 'string' },
      repeat: { type: 'string' },
      n: { type: 'string' },
      'graphile-n': { type: 'string' },
      'pgboss-n': { type: 'string' },
      'rhythm-main': { type: 'string' },
      'rhythm-threads': { type: 'string' },
      'rhythm-cpu': { type: 'string' },
      'wait-n': { type: 'string' },
      'raw-loops': { type: 'string' },
      'raw-batch': { type: 'string' },
      'graphile-concurrency': { type: 'string' },
      'graphile-local-queue': { type: 'string' },
      pgboss: { type: 'string' },
      'cpu-n': { type: 'string' },
      'cpu-n10': { type: 'string' },
      'rounds-1ms': { type: 'string' },
      'rounds-10ms': { type: 'string' },
      'latency-n': { type: 'string' },
      'latency-rate': { type: 'string' },
      'idle-ms': { type: 'string' },
      'bulk-n': { type: 'string' },
      'bulk-parallel': { type: 'string' },
      'scale-n': { type: 'string' },
      'scale-procs': { type: 'string' },
      out: { type: 'string' },
      'data-dir': { type: 'string' },
      'database-url': { type: 'string' },
      'pg-setting': { type: 'string', multiple: true },
      'no-progress': { type: 'boolean' },
      keep: { type: 'boolean' },
      'pg-stats': { type: 'boolean' },
    },
  });
  if (v.help) return 'help';
  const quick = Boolean(v.quick);
  const threads = int(v.threads, '--threads') ?? os.availableParallelism();
  const all = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const only = ints(v.only, '--only');
  const skip = new Set(ints(v.skip, '--skip') ?? []);
  const scenarios = new Set((only ?? all).filter((s) => all.includes(s) && !skip.has(s)));
  const n = int(v.n, '--n') ?? (quick ? 5_000 : 50_000);
  const cfgs = (s: string | undefined, flag: string, dflt: RhythmConfig[]) =>
    pairs(s, '/', flag)?.map(([concurrency, batchSize]) => ({ concurrency, batchSize })) ?? dflt;
  const pgSettings: Record<string, string> = {};
  for (const kv of v['pg-setting'] ?? []) {
    const i = kv.indexOf('=');
    if (i < 1) throw new Error(`--pg-setting: expected name=value, got ${kv}`);
    pgSettings[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return {
    quick,
    scenarios,
    peers: !v['no-peers'],
    baselines: !v['no-baselines'],
    threads,
    repeat: count(v.repeat, '--repeat') ?? 3,
    n,
    graphileN: int(v['graphile-n'], '--graphile-n') ?? n,
    pgbossN: int(v['pgboss-n'], '--pgboss-n') ?? Math.min(n, quick ? 2_000 : 20_000),
    rhythmMain: cfgs(
      v['rhythm-main'],
      '--rhythm-main',
      quick
        ? [{ concurrency: 2000, batchSize: 500 }]
        : [
            { concurrency: 1000, batchSize: 500 },
            { concurrency: 2000, batchSize: 500 },
            { concurrency: 4000, batchSize: 1000 },
          ],
    ),
    rhythmThreads: cfgs(
      v['rhythm-threads'],
      '--rhythm-threads',
      quick
        ? [{ concurrency: 2000, batchSize: 500 }]
        : [
            { concurrency: 1000, batchSize: 500 },
            { concurrency: 2000, batchSize: 500 },
            { concurrency: 4000, batchSize: 1000 },
          ],
    ),
    rhythmCpu: cfgs(
      v['rhythm-cpu'],
      '--rhythm-cpu',
      quick
        ? []
        : [
            { concurrency: threads * 8, batchSize: threads * 4 },
            { concurrency: threads * 32, batchSize: threads * 16 },
          ],
    ),
    rawLoops: ints(v['raw-loops'], '--raw-loops') ?? (quick ? [1] : [1, 2]),
    rawBatch: int(v['raw-batch'], '--raw-batch') ?? 500,
    graphileConcurrency: ints(v['graphile-concurrency'], '--graphile-concurrency') ?? (quick ? [24] : [8, 24, 64]),
    graphileLocalQueue: int(v['graphile-local-queue'], '--graphile-local-queue') ?? 500,
    pgboss:
      pairs(v.pgboss, 'x', '--pgboss')?.map(([batchSize, workers]) => ({ batchSize, workers })) ??
      (quick
        ? [{ batchSize: 500, workers: 1 }]
        : [
            { batchSize: 500, workers: 2 },
            { batchSize: 500, workers: 4 },
            { batchSize: 1000, workers: 4 },
          ]),
    cpuN1: int(v['cpu-n'], '--cpu-n') ?? (quick ? 600 : 4_000),
    cpuN10: int(v['cpu-n10'], '--cpu-n10') ?? (quick ? 60 : 400),
    rounds1: int(v['rounds-1ms'], '--rounds-1ms'),
    rounds10: int(v['rounds-10ms'], '--rounds-10ms'),
    waitN: int(v['wait-n'], '--wait-n') ?? (quick ? 2_000 : 10_000),
    latencyN: int(v['latency-n'], '--latency-n') ?? (quick ? 100 : 1_000),
    latencyRate: int(v['latency-rate'], '--latency-rate') ?? 100,
    idleMs: int(v['idle-ms'], '--idle-ms') ?? (quick ? 1_000 : 5_000),
    bulkN: int(v['bulk-n'], '--bulk-n') ?? (quick ? 20_000 : 100_000),
    bulkParallel: ints(v['bulk-parallel'], '--bulk-parallel') ?? (quick ? [2] : [1, 2, 4]),
    scaleN: int(v['scale-n'], '--scale-n') ?? (quick ? 5_000 : 50_000),
    scaleProcs: ints(v['scale-procs'], '--scale-procs') ?? [1, 2, 4],
    outDir: v.out,
    dataDir: v['data-dir'],
    databaseUrl: v['database-url'],
    pgSettings,
    progress: !v['no-progress'],
    keep: Boolean(v.keep),
    pgStats: Boolean(v['pg-stats']),
  };
}

export { HELP };
