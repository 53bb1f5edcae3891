/**
 * Scenario 3: CPU-bound tasks (tasks/sha256-chain.ts) of ~1 ms and ~10 ms through the pool,
 * the rounds calibrated on this machine. Efficiency = Rhythm's rate / raw Piscina's rate on
 * the same module and thread count. Both run warm: Piscina's threads have loaded the module,
 * and Rhythm's worker has run a few tasks before the measured ones are enqueued; Rhythm's time
 * runs from the first claim to the last completion in its history table.
 */
import { performance } from 'node:perf_hooks';
import { Worker } from '../../src/index.js';
import { bestOf, pct, type BenchContext } from '../lib/context.js';
import { cpuMeter, describeCpu, type CpuSample } from '../lib/cpu.js';
import { SHA_MODULE, type StepProgress } from '../lib/common.js';
import { DoneCounter, type BenchDatabase } from '../lib/database.js';
import { checkHistory, enqueueTasks, openRhythm, remainingInQueue } from '../systems/rhythm.js';
import * as piscina from '../baselines/piscina.js';
import * as tinypool from '../baselines/tinypool.js';

export const TITLE = '3. CPU tasks (sha256 chain)';

export function steps(o: BenchContext['opts']): number {
  return 2 * (o.baselines ? 3 : 1);
}

/** Nanoseconds per sha256 round on this thread (best of several timings). */
export async function calibrate(): Promise<number> {
  const { default: sha } = (await import(SHA_MODULE.href)) as { default: (p: { rounds: number; seed?: string }) => unknown };
  sha({ rounds: 5_000 });
  // The fastest of many short timings: the least disturbed by other processes.
  let best = Infinity;
  for (let i = 0; i < 25; i++) {
    const t0 = performance.now();
    sha({ rounds: 1_000, seed: `c${i}` });
    best = Math.min(best, (performance.now() - t0) / 1_000);
  }
  return best * 1e6;
}

export async function rhythmCpu(db: BenchDatabase, threads: number, n: number, rounds: number, progress: StepProgress, tuning: { concurrency?: number; batchSize?: number } = {}) {
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
    return { seconds: check.seconds, rate: check.completed / check.seconds, done: check.completed, notOnce: check.notOnce, cpu };
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
  const nsPerRound = await calibrate();
  const rounds1 = opts.rounds1 ?? Math.max(1, Math.round(1e6 / nsPerRound));
  const rounds10 = opts.rounds10 ?? Math.max(1, Math.round(1e7 / nsPerRound));
  ctx.calibration = { nsPerRound, rounds1, rounds10 };

  for (const [group, label, rounds, n] of [
    ['3a', '~1 ms', rounds1, opts.cpuN1],
    ['3b', '~10 ms', rounds10, opts.cpuN10],
  ] as const) {
    const scenario = `${TITLE}, ${label}`;
    const payload = (i: number) => ({ seed: `s${i}`, rounds });
    let pis: { rate: number; seconds: number; done: number; cpu: CpuSample } | undefined;
    if (opts.baselines) {
      progress.next(`${scenario} · ${piscina.NAME}`);
      pis = await bestOf(opts.repeat, () => piscina.run(SHA_MODULE, threads, n, payload, progress, 'run()'));
    }
    progress.next(`${scenario} · Rhythm`);
    const rh = await bestOf(opts.repeat, () => rhythmCpu(db, threads, n, rounds, progress));
    const taskMs = pis ? (threads * 1000) / pis.rate : undefined;
    ctx.rows.push({
      group, scenario, system: 'Rhythm', kind: 'rhythm', reference: true,
      config: `threads ${threads}, defaults; ${rounds} rounds`, tasks: n, seconds: rh.seconds, rate: rh.rate,
      done: rh.done, verified: rh.done === n && rh.notOnce === 0,
      notes: [...(pis ? [`efficiency ${pct(rh.rate / pis.rate)} of raw Piscina`] : []), describeCpu(rh.cpu, n)],
      extra: { rounds, efficiency: pis ? rh.rate / pis.rate : undefined, taskMs, cpu: rh.cpu },
    });
    if (pis) {
      ctx.rows.push({
        group, scenario, system: piscina.NAME, kind: 'baseline', config: `${threads} threads, one run() per task`, tasks: n,
        seconds: pis.seconds, rate: pis.rate, done: pis.done, verified: pis.done === n,
        notes: [`${taskMs!.toFixed(2)} ms a task on a thread`, describeCpu(pis.cpu, n)],
        extra: { cpu: pis.cpu },
      });
      progress.next(`${scenario} · ${tinypool.NAME}`);
      const tp = await bestOf(opts.repeat, () => tinypool.run(SHA_MODULE, threads, n, payload, progress, 'run()'));
      ctx.rows.push({
        group, scenario, system: tinypool.NAME, kind: 'baseline', config: `${threads} threads, one run() per task`, tasks: n,
        seconds: tp.seconds, rate: tp.rate, done: tp.done, verified: tp.done === n, notes: [describeCpu(tp.cpu, n)], extra: { cpu: tp.cpu },
      });
    }
  }
}
