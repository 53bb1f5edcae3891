/**
 * Scenario 1: N pre-enqueued no-op tasks, drained by a main-thread handler. Rhythm (configs
 * swept, the best kept, and untuned: `new Worker(r, { queue })`), the raw SQL database limit
 * on Rhythm's tables, graphile-worker (its concurrency swept with a local queue and batched
 * completion) and pg-boss (batchSize swept). Sweeps run first, one run per configuration; then
 * the chosen configurations run in interleaved rounds.
 */
import { rowOf, type BenchContext, type Run } from '../lib/context.js';
import type { Row } from '../lib/common.js';
import { interleave, sweepConfigs, sweepSteps, type Contender } from '../lib/rounds.js';
import { drain, describeWorker, type DrainResult } from '../systems/rhythm.js';
import * as raw from '../baselines/raw-sql.js';
import * as gw from '../peers/graphile-worker.js';
import * as pb from '../peers/pg-boss.js';

export const TITLE = '1. no-op, main thread';

function contenders(o: BenchContext['opts']): number {
  return 3 + (o.baselines ? 2 : 0) + (o.peers ? 2 : 0);
}

export function steps(o: BenchContext['opts']): number {
  const sweeps =
    sweepSteps(o.rhythmMain.length) +
    (o.baselines ? 2 * sweepSteps(o.rawLoops.length) : 0) +
    (o.peers ? sweepSteps(o.graphileConcurrency.length) + sweepSteps(o.pgboss.length) : 0);
  return sweeps + o.repeat * contenders(o);
}

const fromDrain =
  (n: number) =>
  (res: DrainResult): Run => ({
    rate: res.rate,
    seconds: res.seconds,
    done: res.check.completed,
    once: res.check.completed === n && res.check.notOnce === 0,
    cpu: res.cpu,
    statements: res.statements,
  });

export async function run(ctx: BenchContext): Promise<void> {
  const { opts, db, progress } = ctx;
  const n = opts.n;
  const all: { row: Omit<Row, 'rate' | 'rounds' | 'seconds' | 'done' | 'verified'>; contender: Contender<Run> }[] = [];

  const rhythm =
    (worker: { queue: string; concurrency?: number; batchSize?: number }, metrics = false) =>
    () =>
      drain(db, 's1', { n, mode: 'main', worker, progress, label: 'drain', metrics }).then(fromDrain(n));
  const main = await sweepConfigs(
    opts.rhythmMain,
    (c) => describeWorker(c),
    (c) => rhythm({ queue: 'default', ...c })(),
    progress,
    `${TITLE} · Rhythm`,
  );
  ctx.bestMain = main.best;
  const tuned = { queue: 'default', ...main.best };
  all.push({
    row: {
      group: '1',
      scenario: TITLE,
      system: 'Rhythm',
      kind: 'rhythm',
      reference: true,
      config: describeWorker(tuned),
      tasks: n,
      sweep: main.sweep,
    },
    contender: { label: `Rhythm (${describeWorker(tuned)})`, run: rhythm(tuned) },
  });
  // The cost of Prometheus metrics: the tuned configuration again, recording.
  all.push({
    row: {
      group: '1',
      scenario: TITLE,
      system: 'Rhythm, metrics on',
      kind: 'rhythm',
      config: `${describeWorker(tuned)}, r.metrics()`,
      tasks: n,
    },
    contender: { label: 'Rhythm, metrics on', run: rhythm(tuned, true) },
  });
  all.push({
    row: { group: '1', scenario: TITLE, system: 'Rhythm (defaults)', kind: 'rhythm', config: 'new Worker(r, { queue })', tasks: n },
    contender: { label: 'Rhythm (defaults)', run: rhythm({ queue: 'default' }) },
  });

  if (opts.baselines) {
    for (const variant of ['minimal', 'rhythm'] as const) {
      const name = variant === 'minimal' ? raw.NAME : raw.RHYTHM_SQL_NAME;
      const describe = (loops: number) => `${loops} pipeline${loops > 1 ? 's' : ''} (claim + settle connections), batch ${opts.rawBatch}`;
      const go = (loops: number) => () =>
        raw.drain(db, n, { loops, batch: opts.rawBatch, variant }, progress, 'claim + complete').then(
          (res): Run => ({
            rate: res.rate,
            seconds: res.seconds,
            done: res.check.completed,
            once: res.check.completed === n && res.check.notOnce === 0,
            cpu: res.cpu,
          }),
        );
      const s = await sweepConfigs(opts.rawLoops, describe, (l) => go(l)(), progress, `${TITLE} · ${name}`);
      all.push({
        row: {
          group: '1',
          scenario: TITLE,
          system: name,
          kind: 'baseline',
          config: describe(s.best),
          tasks: n,
          sweep: s.sweep,
          notes: [
            variant === 'minimal'
              ? "the database limit on Rhythm's tables"
              : "Rhythm's claim/settle SQL in a tight loop: Rhythm minus its JS runtime",
          ],
        },
        contender: { label: name, run: go(s.best) },
      });
    }
  }

  if (opts.peers) {
    const gConfigs = opts.graphileConcurrency.map((concurrency) => ({ concurrency, localQueue: opts.graphileLocalQueue, batchDelay: 0 }));
    const gGo = (c: gw.GraphileConfig) => () =>
      gw.drain(db, opts.graphileN, c, progress, 'drain').then((res): Run => ({ ...res, once: res.done === opts.graphileN }));
    const g = await sweepConfigs(gConfigs, gw.describeConfig, (c) => gGo(c)(), progress, `${TITLE} · graphile-worker`);
    all.push({
      row: {
        group: '1',
        scenario: TITLE,
        system: gw.NAME,
        kind: 'peer',
        config: gw.describeConfig(g.best),
        tasks: opts.graphileN,
        sweep: g.sweep,
      },
      contender: { label: gw.NAME, run: gGo(g.best) },
    });

    const pConfigs = opts.pgboss.map((p) => ({ ...p, pollingIntervalSeconds: 0.5 }));
    const pGo = (c: pb.PgBossConfig) => () =>
      pb.drain(db, opts.pgbossN, c, progress, 'drain').then((res): Run => ({ ...res, once: res.done === opts.pgbossN }));
    const p = await sweepConfigs(pConfigs, pb.describeConfig, (c) => pGo(c)(), progress, `${TITLE} · pg-boss`);
    all.push({
      row: {
        group: '1',
        scenario: TITLE,
        system: pb.NAME,
        kind: 'peer',
        config: pb.describeConfig(p.best),
        tasks: opts.pgbossN,
        sweep: p.sweep,
        notes: ['polls (min 0.5 s); rate bound by batchSize per poll'],
      },
      contender: { label: pb.NAME, run: pGo(p.best) },
    });
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
