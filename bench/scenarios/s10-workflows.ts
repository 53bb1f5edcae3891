/**
 * Scenario 10: workflows against plain tasks. W workflows (1,000; quick 100) each fan out 10
 * no-op tasks with Promise.all and return their count: W * 11 executions and 2 activations per
 * workflow. The reference is the same number of executions enqueued as plain no-op tasks, on
 * the same worker configuration. Rounds are interleaved (tasks, workflows, tasks, ...; --repeat)
 * and the median time ratio is reported with its spread; the goal is at most 2x.
 *
 * Both sides are pre-enqueued before the worker starts and timed by the history table, from
 * the first claim to the last completion, as in scenario 1. The workflow row also reports
 * activations per second and, with --pg-stats, the Postgres time per activation (all
 * statements of the drain divided by the activations).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from '../../src/index.js';
import { rowOf, type BenchContext, type Run } from '../lib/context.js';
import { cpuMeter } from '../lib/cpu.js';
import { DoneCounter } from '../lib/database.js';
import { fmtInt } from '../lib/common.js';
import { fmtSpread, interleave, ratioOf } from '../lib/rounds.js';
import { checkHistory, enqueueTasks, openRhythm, remainingInQueue } from '../systems/rhythm.js';

export const TITLE = '10. workflows: fan-out of 10 tasks vs plain tasks';

const FANOUT = 10;
const FLOW = `
const parts = [];
for (let i = 0; i < ${FANOUT}; i++) parts.push(i);
const results = await Promise.all(parts.map(i => Task.run("noop", { w: Inputs.w, i })));
return results.length;
`;

export function steps(o: BenchContext['opts']): number {
  return 2 * o.repeat;
}

export async function run(ctx: BenchContext): Promise<void> {
  const { opts, progress } = ctx;
  const workflows = opts.quick ? 100 : 1_000;
  const executions = workflows * (FANOUT + 1);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rhythm-bench-flow-'));
  const file = path.join(dir, 'fanout.flow');
  writeFileSync(file, FLOW);

  const [tasks, flows] = await interleave(
    opts.repeat,
    [
      { label: 'plain tasks', run: () => measure(ctx, 'tasks', executions, file, workflows) },
      { label: 'workflows', run: () => measure(ctx, 'workflows', executions, file, workflows) },
    ],
    progress,
    TITLE,
  );
  const plain = rowOf(tasks!, {
    group: '10',
    scenario: TITLE,
    system: 'Rhythm',
    kind: 'rhythm',
    reference: true,
    config: `${fmtInt(executions)} plain no-op tasks`,
    tasks: executions,
  });
  const flow = rowOf(flows!, {
    group: '10',
    scenario: TITLE,
    system: 'Rhythm workflows',
    kind: 'rhythm',
    config: `${fmtInt(workflows)} workflows x ${FANOUT} no-op tasks`,
    tasks: executions,
  });
  // Same executions on both sides: the time ratio is the inverse rate ratio, round by round.
  const timeRatio = ratioOf(plain, flow);
  if (timeRatio) {
    flow.notes = [`time workflows / plain tasks: ${fmtSpread(timeRatio, 'x')} (goal <= 2x)`, ...(flow.notes ?? [])];
    flow.extra = { ...flow.extra, timeRatio };
  }
  ctx.rows.push(plain, flow);
}

async function measure(ctx: BenchContext, what: 'tasks' | 'workflows', executions: number, file: string, workflows: number): Promise<Run> {
  const { db, progress } = ctx;
  const r = await openRhythm(db, `s10${what[0]}`, 20);
  const done = new DoneCounter(db.url, r.names.doneChannel);
  const worker = new Worker(r, { queue: 'default', concurrency: 500, batchSize: 500 });
  worker.task('noop', (p: unknown) => p ?? null);
  if (what === 'workflows') worker.workflow('fanout', file);
  let running: Promise<void> | undefined;
  try {
    progress.begin(`${what}: enqueue`, what === 'tasks' ? executions : workflows);
    if (what === 'tasks') {
      await enqueueTasks(r, executions, (i) => ({ name: 'noop', payload: { i }, queue: 'default' }), progress);
    } else {
      for (let i = 0; i < workflows; i += 100) {
        await Promise.all(Array.from({ length: Math.min(100, workflows - i) }, (_, j) => r.startWorkflow('fanout', { w: i + j })));
        progress.update(Math.min(workflows, i + 100));
      }
    }
    await done.start();
    progress.begin(what, executions);
    await db.stats?.reset();
    const meter = cpuMeter(db);
    running = worker.start();
    await done.waitFor(executions, { remaining: () => remainingInQueue(r), onProgress: (c) => progress.update(c) });
    const cpu = meter();
    const statements = await db.stats?.top(50);
    await worker.stop();
    await running;
    const check = await checkHistory(r);
    const run: Run = {
      rate: check.completed / check.seconds,
      seconds: check.seconds,
      done: check.completed,
      // Tasks run once; a workflow is claimed once per activation, so its attempts are not 1.
      once: what === 'tasks' ? check.notOnce === 0 : check.completed === executions,
      cpu,
      statements,
    };
    if (what === 'workflows') {
      const res = await r.pool.query(`SELECT coalesce(sum(activations), 0)::int AS n FROM ${r.names.workflows}`);
      const activations: number = res.rows[0].n;
      const pgMs = statements?.reduce((a, s) => a + s.totalMs, 0);
      run.notes = [
        `${fmtInt(activations / check.seconds)} activations/s`,
        ...(pgMs !== undefined
          ? [`Postgres ${((pgMs / activations) * 1000).toFixed(0)} us per activation (every statement of the drain)`]
          : []),
      ];
      run.extra = { activations };
    }
    return run;
  } finally {
    await done.stop();
    await worker.stop({ timeoutMs: 1_000 }).catch(() => undefined);
    await running?.catch(() => undefined);
    await r.shutdown({ timeoutMs: 1_000 }).catch(() => undefined);
    await db.dropSchema(r.names.schema).catch(() => undefined);
  }
}
