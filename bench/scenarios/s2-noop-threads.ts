/**
 * Scenario 2: N pre-enqueued no-op tasks through a thread pool (threads = cores): Rhythm's
 * module handler (tasks/noop.ts) against raw Piscina and Tinypool running the same module
 * with one run() per task.
 */
import { bestOf, type BenchContext } from '../lib/context.js';
import { describeCpu, type CpuSample } from '../lib/cpu.js';
import { NOOP_MODULE } from '../lib/common.js';
import { drain, describeWorker } from '../systems/rhythm.js';
import type { StatementStat } from '../lib/database.js';
import * as piscina from '../baselines/piscina.js';
import * as tinypool from '../baselines/tinypool.js';

export const TITLE = '2. no-op, thread pool';

export function steps(o: BenchContext['opts']): number {
  return o.rhythmThreads.length + (o.baselines ? 2 : 0);
}

export async function run(ctx: BenchContext): Promise<void> {
  const { opts, db, progress } = ctx;
  const n = opts.n;
  const threads = opts.threads;
  const sweep: { config: string; rate: number }[] = [];
  let best: { config: string; rate: number; seconds: number; done: number; notOnce: number; cpu: CpuSample; statements?: StatementStat[] } | undefined;
  for (const c of opts.rhythmThreads) {
    const worker = { queue: 'high-cpu', threads, concurrency: c.concurrency, batchSize: c.batchSize };
    const config = describeWorker(worker);
    progress.next(`${TITLE} · Rhythm (${config})`);
    const res = await bestOf(opts.repeat, () => drain(db, 's2', { n, mode: 'module', module: NOOP_MODULE, worker, progress, label: 'drain' }));
    sweep.push({ config, rate: res.rate });
    if (!best || res.rate > best.rate) best = { config, rate: res.rate, seconds: res.seconds, done: res.check.completed, notOnce: res.check.notOnce, cpu: res.cpu, statements: res.statements };
  }
  ctx.rows.push({
    group: '2', scenario: TITLE, system: 'Rhythm', kind: 'rhythm', reference: true, config: best!.config, tasks: n,
    seconds: best!.seconds, rate: best!.rate, done: best!.done, verified: best!.done === n && best!.notOnce === 0,
    notes: [describeCpu(best!.cpu, n)], sweep,
    extra: { cpu: best!.cpu, ...(best!.statements ? { pgStatements: best!.statements } : {}) },
  });

  if (opts.baselines) {
    for (const pool of [piscina, tinypool]) {
      progress.next(`${TITLE} · ${pool.NAME} (${threads} threads)`);
      const res = await bestOf(opts.repeat, () => pool.run(NOOP_MODULE, threads, n, (i) => ({ i }), progress, 'run()'));
      ctx.rows.push({
        group: '2', scenario: TITLE, system: pool.NAME, kind: 'baseline', config: `${threads} threads, one run() per task`,
        tasks: n, seconds: res.seconds, rate: res.rate, done: res.done, verified: res.done === n, notes: ['no database', describeCpu(res.cpu, n)],
        extra: { cpu: res.cpu },
      });
    }
  }
}
