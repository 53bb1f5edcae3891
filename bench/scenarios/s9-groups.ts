/**
 * Scenario 9: group concurrency over 100 groups. N pre-enqueued no-op tasks spread over 100
 * groups (round robin), drained by one main-thread worker, with `groupConcurrency` (each claim
 * takes slots per group in work_groups, each settle gives them back) and without it (the same
 * tasks and groups, no limit): the price of the accounting, from interleaved rounds.
 */
import { rowOf, type BenchContext, type Run } from '../lib/context.js';
import type { StepProgress } from '../lib/common.js';
import { cpuMeter } from '../lib/cpu.js';
import { interleave } from '../lib/rounds.js';
import { DoneCounter, type BenchDatabase } from '../lib/database.js';
import { Worker, type WorkerOptions } from '../../src/index.js';
import { checkHistory, openRhythm, remainingInQueue } from '../systems/rhythm.js';

export const TITLE = '9. group concurrency, 100 groups';

const GROUPS = 100;
const GROUP_CONCURRENCY = 2;
const CHUNK = 10_000;

interface Variant {
  name: string;
  groupConcurrency?: number;
}
const VARIANTS: Variant[] = [{ name: 'no limit' }, { name: `groupConcurrency ${GROUP_CONCURRENCY}`, groupConcurrency: GROUP_CONCURRENCY }];

export function steps(o: BenchContext['opts']): number {
  return o.repeat * VARIANTS.length;
}

async function drainGroups(db: BenchDatabase, n: number, worker: WorkerOptions, progress: StepProgress, label: string): Promise<Run> {
  const r = await openRhythm(db, 's9');
  const done = new DoneCounter(db.url, r.names.doneChannel);
  let w: Worker | undefined;
  let running: Promise<void> | undefined;
  try {
    progress.begin(`${label}: enqueue`, n);
    for (let i = 0; i < n; i += CHUNK) {
      const items = [];
      for (let j = i; j < Math.min(n, i + CHUNK); j++) {
        items.push({ name: 'noop', payload: { i: j }, options: { queue: 'groups', group: `tenant-${j % GROUPS}` } });
      }
      await r.enqueueMany(items);
      progress.update(Math.min(n, i + CHUNK));
    }
    await done.start();
    w = new Worker(r, worker).task('noop', (p: unknown) => p ?? null);
    progress.begin(label, n);
    const meter = cpuMeter(db);
    running = w.start();
    await done.waitFor(n, { remaining: () => remainingInQueue(r), onProgress: (c) => progress.update(c) });
    const cpu = meter();
    await w.stop();
    await running;
    const check = await checkHistory(r);
    const slots = await r.pool.query(`SELECT coalesce(sum(running), 0)::int AS n FROM ${r.names.workGroups}`);
    const leftoverSlots: number = slots.rows[0].n;
    return {
      rate: check.completed / check.seconds, seconds: check.seconds, done: check.completed,
      // Every slot given back once every task completed.
      once: check.completed === n && check.notOnce === 0 && leftoverSlots === 0,
      cpu, extra: { leftoverSlots },
    };
  } finally {
    await done.stop();
    await w?.stop({ timeoutMs: 1_000 }).catch(() => undefined);
    await running?.catch(() => undefined);
    await r.shutdown({ timeoutMs: 1_000 }).catch(() => undefined);
    await db.dropSchema(r.names.schema).catch(() => undefined);
  }
}

export async function run(ctx: BenchContext): Promise<void> {
  const { opts, db, progress } = ctx;
  const n = opts.n;
  const base = { queue: 'groups', concurrency: ctx.bestMain?.concurrency ?? 100, batchSize: ctx.bestMain?.batchSize ?? 100 };
  const worker = (v: Variant): WorkerOptions => ({ ...base, ...(v.groupConcurrency ? { groupConcurrency: v.groupConcurrency } : {}) });
  const results = await interleave(opts.repeat, VARIANTS.map((v) => ({ label: v.name, run: () => drainGroups(db, n, worker(v), progress, 'drain') })), progress, TITLE);
  VARIANTS.forEach((v, i) => ctx.rows.push(rowOf(results[i]!, {
    group: '9', scenario: TITLE, system: 'Rhythm', kind: 'rhythm', reference: i === 0,
    config: `${v.name}, concurrency ${base.concurrency}, batch ${base.batchSize}, ${GROUPS} groups round robin`, tasks: n,
  })));
}
