/**
 * Scenario 2: N pre-enqueued no-op tasks through a thread pool (threads = cores): Rhythm's
 * module handler (tasks/noop.ts), swept and untuned (only `threads` set), against raw
 * Piscina and Tinypool running the same module with one run() per task, in interleaved rounds.
 */
import { rowOf, type BenchContext, type Run } from '../lib/context.js';
import { NOOP_MODULE, type Row } from '../lib/common.js';
import { interleave, sweepConfigs, sweepSteps, type Contender } from '../lib/rounds.js';
import { drain, describeWorker } from '../systems/rhythm.js';
import * as piscina from '../baselines/piscina.js';
import * as tinypool from '../baselines/tinypool.js';

export const TITLE = '2. no-op, thread pool';

export function steps(o: BenchContext['opts']): number {
  return sweepSteps(o.rhythmThreads.length) + o.repeat * (2 + (o.baselines ? 2 : 0));
}

export async function run(ctx: BenchContext): Promise<void> {
  const { opts, db, progress } = ctx;
  const n = opts.n;
  const threads = opts.threads;
  const all: { row: Omit<Row, 'rate' | 'rounds' | 'seconds' | 'done' | 'verified'>; contender: Contender<Run> }[] = [];
  const rhythm = (worker: { queue: string; threads: number; concurrency?: number; batchSize?: number }) => () =>
    drain(db, 's2', { n, mode: 'module', module: NOOP_MODULE, worker, progress, label: 'drain' }).then(
      (res): Run => ({
        rate: res.rate,
        seconds: res.seconds,
        done: res.check.completed,
        once: res.check.completed === n && res.check.notOnce === 0,
        cpu: res.cpu,
        statements: res.statements,
      }),
    );
  const s = await sweepConfigs(
    opts.rhythmThreads,
    (c) => describeWorker({ threads, ...c }),
    (c) => rhythm({ queue: 'high-cpu', threads, ...c })(),
    progress,
    `${TITLE} · Rhythm`,
  );
  const tuned = { queue: 'high-cpu', threads, ...s.best };
  all.push({
    row: {
      group: '2',
      scenario: TITLE,
      system: 'Rhythm',
      kind: 'rhythm',
      reference: true,
      config: describeWorker(tuned),
      tasks: n,
      sweep: s.sweep,
    },
    contender: { label: `Rhythm (${describeWorker(tuned)})`, run: rhythm(tuned) },
  });
  all.push({
    row: {
      group: '2',
      scenario: TITLE,
      system: 'Rhythm (defaults)',
      kind: 'rhythm',
      config: `new Worker(r, { queue, threads: ${threads} })`,
      tasks: n,
    },
    contender: { label: 'Rhythm (defaults)', run: rhythm({ queue: 'high-cpu', threads }) },
  });
  if (opts.baselines) {
    for (const pool of [piscina, tinypool]) {
      all.push({
        row: {
          group: '2',
          scenario: TITLE,
          system: pool.NAME,
          kind: 'baseline',
          config: `${threads} threads, one run() per task`,
          tasks: n,
          notes: ['no database'],
        },
        contender: {
          label: `${pool.NAME} (${threads} threads)`,
          run: () =>
            pool.run(NOOP_MODULE, threads, n, (i) => ({ i }), progress, 'run()').then((res): Run => ({ ...res, once: res.done === n })),
        },
      });
    }
  }
  const results = await interleave(
    opts.repeat,
    all.map((a) => a.contender),
    progress,
    TITLE,
  );
  all.forEach((a, i) => {
    ctx.rows.push(rowOf(results[i]!, a.row));
  });
}
