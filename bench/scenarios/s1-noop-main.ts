/**
 * Scenario 1: N pre-enqueued no-op tasks, drained by a main-thread handler. Rhythm (configs
 * swept, best kept), the raw SQL database limit on Rhythm's tables, graphile-worker (its
 * concurrency swept with a local queue and batched completion) and pg-boss (batchSize swept).
 */
import { bestOf, type BenchContext } from '../lib/context.js';
import { describeCpu, type CpuSample } from '../lib/cpu.js';
import type { Row } from '../lib/common.js';
import { drain, describeWorker } from '../systems/rhythm.js';
import type { StatementStat } from '../lib/database.js';
import * as raw from '../baselines/raw-sql.js';
import * as gw from '../peers/graphile-worker.js';
import * as pb from '../peers/pg-boss.js';

export const TITLE = '1. no-op, main thread';

export function steps(ctx: BenchContext['opts']): number {
  return ctx.rhythmMain.length + (ctx.baselines ? 2 * ctx.rawLoops.length : 0) + (ctx.peers ? ctx.graphileConcurrency.length + ctx.pgboss.length : 0);
}

export async function run(ctx: BenchContext): Promise<void> {
  const { opts, db, progress } = ctx;
  const n = opts.n;

  // Rhythm: sweep, keep the best.
  const sweep: { config: string; rate: number }[] = [];
  let best: { config: string; rate: number; seconds: number; done: number; notOnce: number; cpu: CpuSample; statements?: StatementStat[] } | undefined;
  for (const c of opts.rhythmMain) {
    const worker = { queue: 'default', concurrency: c.concurrency, batchSize: c.batchSize };
    const config = describeWorker(worker);
    progress.next(`${TITLE} · Rhythm (${config})`);
    const res = await bestOf(opts.repeat, () => drain(db, 's1', { n, mode: 'main', worker, progress, label: 'drain' }));
    sweep.push({ config, rate: res.rate });
    if (!best || res.rate > best.rate) {
      best = { config, rate: res.rate, seconds: res.seconds, done: res.check.completed, notOnce: res.check.notOnce, cpu: res.cpu, statements: res.statements };
      ctx.bestMain = c;
    }
  }
  ctx.rows.push({
    group: '1', scenario: TITLE, system: 'Rhythm', kind: 'rhythm', reference: true,
    config: best!.config, tasks: n, seconds: best!.seconds, rate: best!.rate,
    done: best!.done, verified: best!.done === n && best!.notOnce === 0,
    notes: [describeCpu(best!.cpu, n)], sweep,
    extra: { cpu: best!.cpu, ...(best!.statements ? { pgStatements: best!.statements } : {}) },
  } satisfies Row);

  if (opts.baselines) {
    for (const variant of ['minimal', 'rhythm'] as const) {
      const name = variant === 'minimal' ? raw.NAME : raw.RHYTHM_SQL_NAME;
      const rawSweep: { config: string; rate: number }[] = [];
      let bestRaw: { config: string; rate: number; seconds: number; done: number; notOnce: number; cpu: CpuSample } | undefined;
      for (const loops of opts.rawLoops) {
        const config = `${loops} pipeline${loops > 1 ? 's' : ''} (claim + settle connections), batch ${opts.rawBatch}`;
        progress.next(`${TITLE} · ${name} (${config})`);
        const res = await bestOf(opts.repeat, () => raw.drain(db, n, { loops, batch: opts.rawBatch, variant }, progress, 'claim + complete'));
        rawSweep.push({ config, rate: res.rate });
        if (!bestRaw || res.rate > bestRaw.rate) bestRaw = { config, rate: res.rate, seconds: res.seconds, done: res.check.completed, notOnce: res.check.notOnce, cpu: res.cpu };
      }
      ctx.rows.push({
        group: '1', scenario: TITLE, system: name, kind: 'baseline', config: bestRaw!.config, tasks: n,
        seconds: bestRaw!.seconds, rate: bestRaw!.rate, done: bestRaw!.done, verified: bestRaw!.done === n && bestRaw!.notOnce === 0,
        notes: [variant === 'minimal' ? "the database limit on Rhythm's tables" : "Rhythm's claim/settle SQL in a tight loop: Rhythm minus its JS runtime", describeCpu(bestRaw!.cpu, n)],
        extra: { cpu: bestRaw!.cpu },
        sweep: rawSweep,
      });
    }
  }

  if (opts.peers) {
    const gSweep: { config: string; rate: number }[] = [];
    let bestG: { config: string; rate: number; seconds: number; done: number; cpu: CpuSample } | undefined;
    for (const concurrency of opts.graphileConcurrency) {
      const c = { concurrency, localQueue: opts.graphileLocalQueue, batchDelay: 0 };
      const config = gw.describeConfig(c);
      progress.next(`${TITLE} · graphile-worker (${config})`);
      const res = await bestOf(opts.repeat, () => gw.drain(db, opts.graphileN, c, progress, 'drain'));
      gSweep.push({ config, rate: res.rate });
      if (!bestG || res.rate > bestG.rate) bestG = { config, ...res };
    }
    ctx.rows.push({
      group: '1', scenario: TITLE, system: gw.NAME, kind: 'peer', config: bestG!.config, tasks: opts.graphileN,
      seconds: bestG!.seconds, rate: bestG!.rate, done: bestG!.done, verified: bestG!.done === opts.graphileN, sweep: gSweep,
      notes: [describeCpu(bestG!.cpu, opts.graphileN)], extra: { cpu: bestG!.cpu },
    });

    const pSweep: { config: string; rate: number }[] = [];
    let bestP: { config: string; rate: number; seconds: number; done: number; cpu: CpuSample } | undefined;
    for (const p of opts.pgboss) {
      const c = { ...p, pollingIntervalSeconds: 0.5 };
      const config = pb.describeConfig(c);
      progress.next(`${TITLE} · pg-boss (${config})`);
      const res = await bestOf(opts.repeat, () => pb.drain(db, opts.pgbossN, c, progress, 'drain'));
      pSweep.push({ config, rate: res.rate });
      if (!bestP || res.rate > bestP.rate) bestP = { config, ...res };
    }
    ctx.rows.push({
      group: '1', scenario: TITLE, system: pb.NAME, kind: 'peer', config: bestP!.config, tasks: opts.pgbossN,
      seconds: bestP!.seconds, rate: bestP!.rate, done: bestP!.done, verified: bestP!.done === opts.pgbossN, sweep: pSweep,
      notes: ['polls (min 0.5 s); rate bound by batchSize per poll', describeCpu(bestP!.cpu, opts.pgbossN)], extra: { cpu: bestP!.cpu },
    });
  }
}
