/**
 * Scenario 9: group concurrency over 100 groups. N pre-enqueued no-op tasks spread over 100
 * groups (round robin), drained by one main-thread worker, with `groupConcurrency` (each claim
 * takes slots per group in work_groups, each settle gives them back) and without it (the same
 * tasks and groups, no limit): the price of the accounting, from interleaved rounds
 * (A, B, B, A, ...) reported as the median ratio with its spread.
 */
import type { BenchContext } from '../lib/context.js';
import type { Row, StepProgress } from '../lib/common.js';
import { describeCpu, cpuMeter, type CpuSample } from '../lib/cpu.js';
import { DoneCounter, type BenchDatabase } from '../lib/database.js';
import { Worker, type WorkerOptions } from '../../src/index.js';
import { checkHistory, openRhythm, remainingInQueue } from '../systems/rhythm.js';

export const TITLE = '9. group concurrency, 100 groups';

const GROUPS = 100;
const GROUP_CONCURRENCY = 2;
/** Interleaved rounds per variant. */
const ROUNDS = 3;
const CHUNK = 10_000;

interface Variant {
  name: string;
  groupConcurrency?: number;
}
const VARIANTS: Variant[] = [{ name: 'no limit' }, { name: `groupConcurrency ${GROUP_CONCURRENCY}`, groupConcurrency: GROUP_CONCURRENCY }];

export function steps(_o: BenchContext['opts']): number {
  return ROUNDS * VARIANTS.length;
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

async function drainGroups(db: BenchDatabase, n: number, worker: WorkerOptions, progress: StepProgress, label: string): Promise<Drained> {
  const r = await openRhythm(db, 's7');
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
    return { rate: check.completed / check.seconds, seconds: check.seconds, done: check.completed, notOnce: check.notOnce, cpu, leftoverSlots: slots.rows[0].n };
  } finally {
    await done.stop();
    await w?.stop({ timeoutMs: 1_000 }).catch(() => undefined);
    await running?.catch(() => undefined);
    await r.shutdown({ timeoutMs: 1_000 }).catch(() => undefined);
    await db.dropSchema(r.names.schema).catch(() => undefined);
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export async function run(ctx: BenchContext): Promise<void> {
  const { opts, db, progress } = ctx;
  const n = opts.n;
  const base = { queue: 'groups', concurrency: ctx.bestMain?.concurrency ?? 100, batchSize: ctx.bestMain?.batchSize ?? 100 };
  const results: Drained[][] = VARIANTS.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    // A, B then B, A: neither variant always runs first on a warmer (or busier) machine.
    const order = round % 2 === 0 ? [0, 1] : [1, 0];
    for (const v of order) {
      const variant = VARIANTS[v]!;
      progress.next(`${TITLE} · ${variant.name} (round ${round + 1}/${ROUNDS})`);
      const worker: WorkerOptions = { ...base, ...(variant.groupConcurrency ? { groupConcurrency: variant.groupConcurrency } : {}) };
      results[v]!.push(await drainGroups(db, n, worker, progress, 'drain'));
    }
  }
  const ratios = results[1]!.map((b, i) => b.rate / results[0]![i]!.rate);
  const spread = `x${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}`;
  VARIANTS.forEach((variant, v) => {
    const rs = results[v]!;
    const rate = median(rs.map((x) => x.rate));
    const typical = rs.reduce((a, b) => (Math.abs(b.rate - rate) < Math.abs(a.rate - rate) ? b : a));
    ctx.rows.push({
      group: '9',
      scenario: TITLE,
      system: 'Rhythm',
      kind: 'rhythm',
      reference: v === 0,
      config: `${variant.name}, concurrency ${base.concurrency}, batch ${base.batchSize}, ${GROUPS} groups round robin`,
      tasks: n,
      seconds: typical.seconds,
      rate,
      done: typical.done,
      verified: rs.every((x) => x.done === n && x.notOnce === 0 && x.leftoverSlots === 0),
      notes: [
        `median of ${ROUNDS} interleaved rounds: ${rs.map((x) => Math.round(x.rate)).join(', ')} tasks/s`,
        ...(v === 1 ? [`rate against no limit: median x${median(ratios).toFixed(2)} (${spread})`] : []),
        describeCpu(typical.cpu, n),
      ],
      extra: { rounds: rs.map((x) => ({ rate: x.rate, seconds: x.seconds })), ...(v === 1 ? { ratios } : {}) },
    } satisfies Row);
  });
}
