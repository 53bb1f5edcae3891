/**
 * Scenario 10: workflows against plain tasks. W workflows (1,000; quick 100) each fan out 10
 * no-op tasks with Promise.all and return their sum: W * 11 executions and 2 activations per
 * workflow. The reference is the same number of executions enqueued as plain no-op tasks, on
 * the same worker configuration. Rounds are interleaved (tasks, workflows, tasks, ...) and the
 * median ratio is reported with its spread; the goal is a ratio of at most 2x in time.
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
import type { BenchContext } from '../lib/context.js';
import { describeCpu, cpuMeter, type CpuSample } from '../lib/cpu.js';
import { DoneCounter, type StatementStat } from '../lib/database.js';
import { fmtInt, type Row } from '../lib/common.js';
import { checkHistory, enqueueTasks, openRhythm, remainingInQueue } from '../systems/rhythm.js';

export const TITLE = '10. workflows: fan-out of 10 tasks vs plain tasks';

const FANOUT = 10;
const ROUNDS = 3;
const FLOW = `
const parts = [];
for (let i = 0; i < ${FANOUT}; i++) parts.push(i);
const results = await Promise.all(parts.map(i => Task.run("noop", { w: Inputs.w, i })));
return results.length;
`;

export function steps(): number {
  return 2 * ROUNDS;
}

interface Measured {
  seconds: number;
  rate: number;
  completed: number;
  notOnce: number;
  activations: number;
  cpu: CpuSample;
  statements?: StatementStat[];
}

export async function run(ctx: BenchContext): Promise<void> {
  const { opts, progress } = ctx;
  const workflows = opts.quick ? 100 : 1_000;
  const executions = workflows * (FANOUT + 1);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rhythm-bench-flow-'));
  const file = path.join(dir, 'fanout.flow');
  writeFileSync(file, FLOW);

  const tasks: Measured[] = [];
  const flows: Measured[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    progress.next(`${TITLE} · plain tasks (round ${round})`);
    tasks.push(await measure(ctx, 'tasks', executions, file, workflows));
    progress.next(`${TITLE} · workflows (round ${round})`);
    flows.push(await measure(ctx, 'workflows', executions, file, workflows));
  }
  const ratios = tasks.map((t, i) => flows[i]!.seconds / t.seconds).sort((a, b) => a - b);
  const median = ratios[Math.floor(ratios.length / 2)]!;
  const mid = <T extends Measured>(list: T[]) => [...list].sort((a, b) => a.seconds - b.seconds)[Math.floor(list.length / 2)]!;
  const t = mid(tasks);
  const f = mid(flows);
  const spread = `time ratio workflows/tasks: median ${median.toFixed(2)}x, ${ratios.map((r) => r.toFixed(2)).join(' / ')} over ${ROUNDS} interleaved rounds (goal <= 2x)`;
  const pgPerActivation = f.statements ? f.statements.reduce((a, s) => a + s.totalMs, 0) / f.activations : undefined;
  ctx.rows.push({
    group: '10', scenario: TITLE, system: 'Rhythm', kind: 'rhythm', reference: true,
    config: `${fmtInt(executions)} plain no-op tasks`, tasks: executions, seconds: t.seconds, rate: t.rate,
    done: t.completed, verified: t.completed === executions && t.notOnce === 0, notes: [describeCpu(t.cpu, executions)],
    extra: { cpu: t.cpu },
  } satisfies Row);
  ctx.rows.push({
    group: '10', scenario: TITLE, system: 'Rhythm workflows', kind: 'rhythm',
    config: `${fmtInt(workflows)} workflows x ${FANOUT} no-op tasks`, tasks: executions, seconds: f.seconds, rate: f.rate,
    done: f.completed, verified: f.completed === executions,
    notes: [
      spread,
      `${fmtInt(f.activations / f.seconds)} activations/s`,
      ...(pgPerActivation !== undefined ? [`Postgres ${(pgPerActivation * 1000).toFixed(0)} us per activation (all statements)`] : []),
      describeCpu(f.cpu, executions),
    ],
    extra: { cpu: f.cpu, ratios, medianTimeRatio: median, activations: f.activations, ...(f.statements ? { pgStatements: f.statements } : {}) },
  } satisfies Row);
}

async function measure(ctx: BenchContext, what: 'tasks' | 'workflows', executions: number, file: string, workflows: number): Promise<Measured> {
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
    let activations = 0;
    if (what === 'workflows') {
      const res = await r.pool.query(`SELECT coalesce(sum(activations), 0)::int AS n FROM ${r.names.workflows}`);
      activations = res.rows[0].n;
    }
    return { seconds: check.seconds, rate: check.completed / check.seconds, completed: check.completed, notOnce: check.notOnce, activations, cpu, statements };
  } finally {
    await done.stop();
    await worker.stop({ timeoutMs: 1_000 }).catch(() => undefined);
    await running?.catch(() => undefined);
    await r.shutdown({ timeoutMs: 1_000 }).catch(() => undefined);
    await db.dropSchema(r.names.schema).catch(() => undefined);
  }
}
