/**
 * Scenario 7: CPU tasks end to end, as an application sees them. The sha256-chain module of
 * scenario 3 (~1 ms and ~10 ms), a Worker with default options except `threads` = cores,
 * running and warmed in the producer's process; the clock runs from the first enqueueMany to
 * the last wait() on each id. Against raw Piscina, one run() per task on the same module and
 * thread count, warmed, timed from the first run() to the last result. Interleaved rounds.
 *
 * The limit: on N cores shared with Postgres, each task's claim, settle and main-thread work
 * takes CPU from the task threads, so Rhythm can reach at most T / (T + o) of raw Piscina (T:
 * the task's CPU time, o: Rhythm's extra CPU a task, Postgres included). The row's notes give
 * o as measured (the CPU of this process and of Postgres, minus raw Piscina's) and the limit
 * it implies.
 *
 * The machine's speed drifts between rounds on a shared VM (the same ~10 ms task has taken
 * 22-39 ms on a thread in consecutive rounds), and that moves the ratios by more than what
 * separates the two systems. So each task also reports when it ran on its thread, and each
 * row gives the share of the round its threads spent running tasks: the time Rhythm's path
 * takes from the threads (waiting for work, the first claim, the last result), which the
 * machine's speed does not move.
 */
import { rowOf, type BenchContext, type Run } from '../lib/context.js';
import { SHA_TIMED_MODULE } from '../lib/common.js';
import { interleave } from '../lib/rounds.js';
import { endToEnd } from '../systems/end-to-end.js';
import { calibration } from './s3-cpu.js';
import * as piscina from '../baselines/piscina.js';

export const TITLE = '7. CPU tasks end to end (enqueueMany, wait() on every id)';

export function steps(o: BenchContext['opts']): number {
  return 2 * o.repeat * 2;
}

/** The extra CPU a task of Rhythm's over raw Piscina's, in ms, and the efficiency limit it implies. */
export function overhead(rhythm: Run, raw: Run, n: number): { extraUs: number; taskUs: number; limit: number } | undefined {
  if (!rhythm.cpu || !raw.cpu || rhythm.cpu.postgresMs === undefined) return undefined;
  const taskUs = (raw.cpu.benchMs * 1000) / n;
  const extraUs = ((rhythm.cpu.benchMs + rhythm.cpu.postgresMs - raw.cpu.benchMs) * 1000) / n;
  return { extraUs, taskUs, limit: taskUs / (taskUs + Math.max(0, extraUs)) };
}

/** Adds up how long the tasks of one round ran on their threads (see sha256-chain-timed.ts). */
function threadTime(threads: number) {
  let ms = 0;
  return {
    add(result: unknown): void {
      const r = result as { ranFrom?: unknown; ranTo?: unknown } | null;
      if (typeof r?.ranFrom === 'number' && typeof r.ranTo === 'number') ms += r.ranTo - r.ranFrom;
    },
    /** The share of the round's thread capacity (threads x its duration) spent running tasks. */
    busy(run: Run): Run {
      return { ...run, extra: { ...run.extra, threadsBusy: ms / (threads * run.seconds * 1000) } };
    },
  };
}

/** The median over the rounds of the share of the threads' time spent running tasks. */
function medianBusy(runs: Run[]): number | undefined {
  const xs = runs.map((r) => r.extra?.threadsBusy).filter((x): x is number => typeof x === 'number');
  return xs.length ? xs.sort((a, b) => a - b)[(xs.length - 1) >> 1] : undefined;
}

export async function run(ctx: BenchContext): Promise<void> {
  const { opts, db, progress } = ctx;
  const threads = opts.threads;
  const { rounds1, rounds10 } = await calibration(ctx);
  for (const [group, label, rounds, n] of [
    ['7a', '~1 ms', rounds1, opts.cpuN1],
    ['7b', '~10 ms', rounds10, opts.cpuN10],
  ] as const) {
    const scenario = `${TITLE}, ${label}`;
    const payload = (i: number) => ({ seed: `e${i}`, rounds });
    const [rh, pis] = await interleave(
      opts.repeat,
      [
        {
          label: 'Rhythm (defaults)',
          run: async () => {
            const time = threadTime(threads);
            const res = await endToEnd(db, 's7', {
              n,
              worker: { queue: 'cpu', threads },
              handler: SHA_TIMED_MODULE,
              payload,
              waiting: 'wait',
              warmUp: threads * 2,
              progress,
              onResult: time.add,
            });
            return time.busy(res);
          },
        },
        {
          label: piscina.NAME,
          run: async () => {
            const time = threadTime(threads);
            const res = await piscina.run(SHA_TIMED_MODULE, threads, n, payload, progress, 'run()', time.add);
            return time.busy({ ...res, once: res.done === n });
          },
        },
      ],
      progress,
      scenario,
    );
    const rhRow = rowOf(rh!, {
      group,
      scenario,
      system: 'Rhythm (defaults)',
      kind: 'rhythm',
      reference: true,
      config: `new Worker(r, { queue, threads: ${threads} }); ${rounds} rounds`,
      tasks: n,
      extra: { rounds },
    });
    const pisRow = rowOf(pis!, {
      group,
      scenario,
      system: piscina.NAME,
      kind: 'baseline',
      config: `${threads} threads, one run() per task`,
      tasks: n,
    });
    pisRow.notes = [`${((threads * 1000) / pisRow.rate!).toFixed(2)} ms a task on a thread`, ...(pisRow.notes ?? [])];
    // The overhead of each round, its median in the row.
    const costs = rh!.map((x, i) => overhead(x, pis![i]!, n)).filter((c) => c !== undefined);
    if (costs.length) {
      const mid = [...costs].sort((a, b) => a.extraUs - b.extraUs)[(costs.length - 1) >> 1]!;
      rhRow.notes = [
        `extra CPU ${mid.extraUs.toFixed(0)} µs a task over raw Piscina (this process + Postgres) on a ${mid.taskUs.toFixed(0)} µs task: limit ${(mid.limit * 100).toFixed(1)}%`,
        ...(rhRow.notes ?? []),
      ];
      rhRow.extra = { ...rhRow.extra, extraCpuUs: mid.extraUs, taskCpuUs: mid.taskUs, modelLimit: mid.limit };
    }
    const rhBusy = medianBusy(rh!);
    const pisBusy = medianBusy(pis!);
    if (rhBusy !== undefined) {
      rhRow.notes = [`threads busy ${(rhBusy * 100).toFixed(1)}% of the round`, ...(rhRow.notes ?? [])];
      rhRow.extra = { ...rhRow.extra, threadsBusy: rhBusy };
    }
    if (pisBusy !== undefined) {
      pisRow.notes = [`threads busy ${(pisBusy * 100).toFixed(1)}% of the round`, ...(pisRow.notes ?? [])];
      pisRow.extra = { ...pisRow.extra, threadsBusy: pisBusy };
    }
    ctx.rows.push(rhRow, pisRow);
  }
}
