/**
 * Scenario 9: group concurrency over 100 groups. N pre-enqueued no-op tasks spread over 100
 * groups (round robin), drained by one main-thread worker, with `groupConcurrency` (each claim
 * takes slots per group in work_groups, each settle gives them back) and without it (the same
 * tasks and groups, no limit): the price of the accounting, from interleaved rounds
 * (--repeat; the report gives the median ratio with its spread). A third variant sets a rate
 * limit on the queue so high it never binds: the queue then has a queue_controls row that
 * every claim reads and updates, which shows what the control lookup costs next to the plain
 * row (a queue without controls, the unrestricted path).
 */
import type { BenchContext } from '../lib/context.js';
import type { Row, StepProgress } from '../lib/common.js';
import { describeCpu, cpuMeter, type CpuSample } from '../lib/cpu.js';
import { DoneCounter, type BenchDatabase } from '../lib/database.js';
import { Worker, type WorkerOptions } from '../../src/index.js';
import { checkHistory, openRhythm, remainingInQueue } from '../systems/rhythm.js';
import { fromRounds, interleave } from '../lib/rounds.js';

export const TITLE = '9. group concurrency, 100 groups';

const GROUPS = 100;
const GROUP_CONCURRENCY = 2;
const CHUNK = 10_000;

/** Starts per second that no run comes near: the bucket is read and refilled, never empty. */
const UNBINDING_RATE = { max: 1_000_000_000, intervalMs: 1_000 };

interface Variant {
  name: string;
  groupConcurrency?: number;
  rateLimit?: { max: number; intervalMs: number };
}
const VARIANTS: Variant[] = [
  { name: 'no limit' },
  { name: `groupConcurrency ${GROUP_CONCURRENCY}`, groupConcurrency: GROUP_CONCURRENCY },
  { name: 'rate limit 1e9/s (controls row present)', rateLimit: UNBINDING_RATE },
];

export function steps(o: BenchContext['opts']): number {
  return o.repeat * VARIANTS.length;
}

interface Drained {
  rate: number;
  seconds: number;
  done: number;
  notOnce: number;
  cpu: CpuSample;
  /** Slots still held once every task completed: 0 when every one was given back. */
  leftoverSlots: number;
}

async function drainGroups(
  db: BenchDatabase,
  n: number,
  worker: WorkerOptions,
  progress: StepProgress,
  label: string,
  rateLimit?: Variant['rateLimit'],
): Promise<Drained> {
  const r = await openRhythm(db, 's7');
  const done = new DoneCounter(db.url, r.names.doneChannel);
  let w: Worker | undefined;
  let running: Promise<void> | undefined;
  try {
    if (rateLimit) await r.setRateLimit('groups', rateLimit);
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
    return {
      rate: check.completed / check.seconds,
      seconds: check.seconds,
      done: check.completed,
      notOnce: check.notOnce,
      cpu,
      leftoverSlots: slots.rows[0].n,
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
  const contenders = VARIANTS.map((variant) => ({
    label: variant.name,
    run: () =>
      drainGroups(
        db,
        n,
        { ...base, ...(variant.groupConcurrency ? { groupConcurrency: variant.groupConcurrency } : {}) },
        progress,
        'drain',
        variant.rateLimit,
      ),
  }));
  const results = await interleave(opts.repeat, contenders, progress, TITLE);
  VARIANTS.forEach((variant, v) => {
    const rs = results[v]!;
    const { rate, rounds, mid } = fromRounds(rs);
    ctx.rows.push({
      group: '9',
      scenario: TITLE,
      system: v === 0 ? 'Rhythm' : `Rhythm (${variant.name})`,
      kind: 'rhythm',
      reference: v === 0,
      config: `${variant.name}, concurrency ${base.concurrency}, batch ${base.batchSize}, ${GROUPS} groups round robin`,
      tasks: n,
      seconds: mid.seconds,
      rate,
      rounds,
      done: mid.done,
      verified: rs.every((x) => x.done === n && x.notOnce === 0 && x.leftoverSlots === 0),
      notes: [describeCpu(mid.cpu, n)],
    } satisfies Row);
  });
}
