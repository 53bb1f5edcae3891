/**
 * Scenario 6: scaling with worker processes. N no-op tasks pre-enqueued on one queue, then
 * 1, 2, 4 ... worker processes (bench/child/worker-process.ts, Rhythm main-thread workers)
 * started together. Exactly once is checked twice: in the history table (every execution
 * completed, after exactly one attempt) and by the processes (their handler runs add up to N).
 * The process counts run in interleaved rounds.
 */
import { rowOf, type BenchContext, type Run } from '../lib/context.js';
import { interleave } from '../lib/rounds.js';
import { cpuMeter } from '../lib/cpu.js';
import { DoneCounter } from '../lib/database.js';
import { WorkerChild } from '../lib/children.js';
import { checkHistory, enqueueTasks, openRhythm, remainingInQueue } from '../systems/rhythm.js';

export const TITLE = '6. scaling, worker processes';

export function steps(o: BenchContext['opts']): number {
  return o.scaleProcs.length * o.repeat;
}

async function measure(ctx: BenchContext, procs: number, c: { concurrency: number; batchSize: number }): Promise<Run> {
  const { opts, db, progress } = ctx;
  const n = opts.scaleN;
  const r = await openRhythm(db, 's6');
  const done = new DoneCounter(db.url, r.names.doneChannel);
  const children: WorkerChild[] = [];
  try {
    progress.begin('enqueue', n);
    await enqueueTasks(r, n, (i) => ({ name: 'noop', payload: { i }, queue: 'default' }), progress);
    await done.start();
    for (let i = 0; i < procs; i++) {
      children.push(
        new WorkerChild({
          system: 'rhythm',
          url: db.url,
          schema: r.names.schema,
          role: 'drain',
          concurrency: c.concurrency,
          batchSize: c.batchSize,
        }),
      );
    }
    await Promise.all(children.map((ch) => ch.ready));
    const meter = cpuMeter(db);
    for (const ch of children) ch.start();
    progress.begin('drain', n);
    await done.waitFor(n, { remaining: () => remainingInQueue(r), onProgress: (x) => progress.update(x) });
    const cpu = meter();
    const ran = await Promise.all(children.map((ch) => ch.stop()));
    const total = ran.reduce((a, b) => a + b, 0);
    const check = await checkHistory(r);
    return {
      rate: check.completed / check.seconds,
      seconds: check.seconds,
      done: check.completed,
      once: check.completed === n && check.notOnce === 0 && total === n,
      cpu,
      notes: [`handler runs ${ran.join(' + ')} = ${total}`],
      extra: { runsPerProcess: ran, cpuBusy: cpu.machineBusy },
    };
  } finally {
    await done.stop();
    await Promise.all(children.map((ch) => ch.stop().catch(() => 0)));
    await r.shutdown({ timeoutMs: 1_000 }).catch(() => undefined);
    await db.dropSchema(r.names.schema).catch(() => undefined);
  }
}

export async function run(ctx: BenchContext): Promise<void> {
  const { opts } = ctx;
  const c = ctx.bestMain ?? opts.rhythmMain[0]!;
  const results = await interleave(
    opts.repeat,
    opts.scaleProcs.map((procs) => ({ label: `Rhythm x${procs}`, run: () => measure(ctx, procs, c) })),
    ctx.progress,
    TITLE,
  );
  opts.scaleProcs.forEach((procs, i) => {
    ctx.rows.push(
      rowOf(results[i]!, {
        group: '6',
        scenario: TITLE,
        system: `Rhythm x${procs} process${procs > 1 ? 'es' : ''}`,
        kind: 'rhythm',
        reference: procs === opts.scaleProcs[0],
        config: `concurrency ${c.concurrency}, batch ${c.batchSize} each`,
        tasks: opts.scaleN,
        extra: { processes: procs },
      }),
    );
  });
}
