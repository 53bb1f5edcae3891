/**
 * Scenario 3: CPU-bound tasks (tasks/sha256-chain.ts) of ~1 ms and ~10 ms through the pool,
 * the rounds calibrated on this machine. Efficiency = Rhythm's rate / raw Piscina's rate on
 * the same module and thread count, taken per interleaved round. Both run warm: Piscina's
 * threads have loaded the module, and Rhythm's worker has run a few tasks before the measured
 * ones are enqueued; Rhythm's time runs from the first claim to the last completion in its
 * history table. Rhythm runs untuned (only `threads`), and, when configurations are given,
 * with the best of them.
 */
import { performance } from 'node:perf_hooks';
import { Worker } from '../../src/index.js';
import { pct, rowOf, type BenchContext, type Run } from '../lib/context.js';
import { cpuMeter } from '../lib/cpu.js';
import { SHA_MODULE, type Row, type StepProgress } from '../lib/common.js';
import { interleave, ratioOf, sweepConfigs, sweepSteps, type Contender } from '../lib/rounds.js';
import { DoneCounter, type BenchDatabase } from '../lib/database.js';
import { checkHistory, describeWorker, enqueueTasks, openRhythm, remainingInQueue } from '../systems/rhythm.js';
import * as piscina from '../baselines/piscina.js';
import * as tinypool from '../baselines/tinypool.js';

export const TITLE = '3. CPU tasks (sha256 chain)';

export function steps(o: BenchContext['opts']): number {
  return 2 * (sweepSteps(o.rhythmCpu.length) + o.repeat * (1 + (o.rhythmCpu.length ? 1 : 0) + (o.baselines ? 2 : 0)));
}

/**
 * Nanoseconds per sha256 round on this thread: the fastest of many short timings. Each is
 * ~0.1 ms, short enough that some run undisturbed even on a crowded machine (the fastest of 25
 * timings of ~1 ms once came out 20x too slow under a load average of ~25 on 2 cores).
 */
export async function calibrate(): Promise<number> {
  const { default: sha } = (await import(SHA_MODULE.href)) as { default: (p: { rounds: number; seed?: string }) => unknown };
  sha({ rounds: 5_000 });
  let best = Infinity;
  for (let i = 0; i < 400; i++) {
    const t0 = performance.now();
    sha({ rounds: 100, seed: `c${i}` });
    best = Math.min(best, (performance.now() - t0) / 100);
  }
  return best * 1e6;
}

/** The sha256 rounds of a ~1 ms and a ~10 ms task, calibrated once a run (or given by flags). */
export async function calibration(ctx: BenchContext): Promise<NonNullable<BenchContext['calibration']>> {
  if (!ctx.calibration) {
    const nsPerRound = await calibrate();
    ctx.calibration = {
      nsPerRound,
      rounds1: ctx.opts.rounds1 ?? Math.max(1, Math.round(1e6 / nsPerRound)),
      rounds10: ctx.opts.rounds10 ?? Math.max(1, Math.round(1e7 / nsPerRound)),
    };
  }
  return ctx.calibration;
}

export async function rhythmCpu(
  db: BenchDatabase,
  threads: number,
  n: number,
  rounds: number,
  progress: StepProgress,
  tuning: { concurrency?: number; batchSize?: number } = {},
): Promise<Run> {
  const r = await openRhythm(db, 's3');
  const done = new DoneCounter(db.url, r.names.doneChannel);
  const worker = new Worker(r, { queue: 'high-cpu', threads, ...tuning });
  worker.task('sha256-chain', SHA_MODULE);
  let running: Promise<void> | undefined;
  try {
    await done.start();
    running = worker.start();
    const payload = (i: number) => ({ name: 'sha256-chain', payload: { seed: `s${i}`, rounds }, queue: 'high-cpu' });
    progress.begin('warm-up', threads * 2);
    const warm = await enqueueTasks(r, threads * 2, payload);
    await done.waitFor(threads * 2, { remaining: () => remainingInQueue(r) });
    progress.begin('enqueue', n);
    const meter = cpuMeter(db);
    const { first } = await enqueueTasks(r, n, payload);
    progress.begin('drain', n);
    await done.waitFor(threads * 2 + n, { remaining: () => remainingInQueue(r), onProgress: (c) => progress.update(c - threads * 2) });
    const cpu = meter();
    const check = await checkHistory(r, first);
    void warm;
    return {
      seconds: check.seconds,
      rate: check.completed / check.seconds,
      done: check.completed,
      once: check.completed === n && check.notOnce === 0,
      cpu,
    };
  } finally {
    await done.stop();
    await worker.stop({ timeoutMs: 5_000 }).catch(() => undefined);
    await running?.catch(() => undefined);
    await r.shutdown({ timeoutMs: 1_000 }).catch(() => undefined);
    await db.dropSchema(r.names.schema).catch(() => undefined);
  }
}

export async function run(ctx: BenchContext): Promise<void> {
  const { opts, db, progress } = ctx;
  const threads = opts.threads;
  const { rounds1, rounds10 } = await calibration(ctx);
  type Entry = { row: Omit<Row, 'rate' | 'rounds' | 'seconds' | 'done' | 'verified'>; contender: Contender<Run> };

  for (const [group, label, rounds, n] of [
    ['3a', '~1 ms', rounds1, opts.cpuN1],
    ['3b', '~10 ms', rounds10, opts.cpuN10],
  ] as const) {
    const scenario = `${TITLE}, ${label}`;
    const payload = (i: number) => ({ seed: `s${i}`, rounds });
    const all: Entry[] = [
      {
        row: {
          group,
          scenario,
          system: 'Rhythm (defaults)',
          kind: 'rhythm',
          reference: true,
          config: `new Worker(r, { queue, threads: ${threads} }); ${rounds} rounds`,
          tasks: n,
          extra: { rounds },
        },
        contender: { label: 'Rhythm (defaults)', run: () => rhythmCpu(db, threads, n, rounds, progress) },
      },
    ];
    if (opts.rhythmCpu.length) {
      const s = await sweepConfigs(
        opts.rhythmCpu,
        (c) => describeWorker({ threads, ...c }),
        (c) => rhythmCpu(db, threads, n, rounds, progress, c),
        progress,
        `${scenario} · Rhythm`,
      );
      all.push({
        row: {
          group,
          scenario,
          system: 'Rhythm',
          kind: 'rhythm',
          config: `${describeWorker({ threads, ...s.best })}; ${rounds} rounds`,
          tasks: n,
          sweep: s.sweep,
          extra: { rounds },
        },
        contender: {
          label: `Rhythm (${describeWorker({ threads, ...s.best })})`,
          run: () => rhythmCpu(db, threads, n, rounds, progress, s.best),
        },
      });
    }
    if (opts.baselines) {
      for (const pool of [piscina, tinypool]) {
        all.push({
          row: { group, scenario, system: pool.NAME, kind: 'baseline', config: `${threads} threads, one run() per task`, tasks: n },
          contender: {
            label: pool.NAME,
            run: () => pool.run(SHA_MODULE, threads, n, payload, progress, 'run()').then((res): Run => ({ ...res, once: res.done === n })),
          },
        });
      }
    }
    const results = await interleave(
      opts.repeat,
      all.map((a) => a.contender),
      progress,
      scenario,
    );
    const rows = all.map((a, i) => rowOf(results[i]!, a.row));
    const pis = rows.find((r) => r.system === piscina.NAME);
    if (pis) {
      const taskMs = (threads * 1000) / pis.rate!;
      pis.notes = [`${taskMs.toFixed(2)} ms a task on a thread`, ...(pis.notes ?? [])];
      for (const r of rows.filter((x) => x.kind === 'rhythm')) {
        const eff = ratioOf(r, pis)!;
        r.notes = [`efficiency ${pct(eff.median)} of raw Piscina`, ...(r.notes ?? [])];
        r.extra = { ...r.extra, efficiency: eff.median, taskMs };
      }
    }
    ctx.rows.push(...rows);
  }
}
