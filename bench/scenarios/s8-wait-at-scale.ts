/**
 * Scenario 8: wait() at scale. N no-op tasks (10,000) through an untuned main-thread Worker
 * already running in the producer's process, timed from the first enqueueMany until the
 * producer knows all are done: with a wait() on every id, against the same drain without
 * waits (done ids counted on a separate LISTEN connection), in interleaved rounds; and with
 * r.waitMany per enqueueMany call when this Rhythm has it.
 *
 * The SELECTs the waits cause are counted on the client (statements sent on Rhythm's own
 * connections: lib/query-counter.ts), and also by pg_stat_statements with --pg-stats; the
 * figure is the count with waits minus the count without, median over the rounds.
 */
import { rowOf, type BenchContext, type Run } from '../lib/context.js';
import { fmtInt } from '../lib/common.js';
import { interleave, median, type Contender } from '../lib/rounds.js';
import { Rhythm } from '../../src/index.js';
import { endToEnd, type EndToEndRun, type Waiting } from '../systems/end-to-end.js';

export const TITLE = '8. wait() at scale (no-op, main thread)';

/** Whether the Rhythm under test has waitMany. */
const hasWaitMany = typeof (Rhythm.prototype as unknown as { waitMany?: unknown }).waitMany === 'function';

export function steps(o: BenchContext['opts']): number {
  return o.repeat * (hasWaitMany ? 3 : 2);
}

export async function run(ctx: BenchContext): Promise<void> {
  const { opts, db, progress } = ctx;
  const n = opts.waitN;
  const variants: { waiting: Waiting; system: string }[] = [
    { waiting: 'none', system: 'Rhythm, no waits' },
    { waiting: 'wait', system: 'Rhythm, wait() on every id' },
    ...(hasWaitMany ? [{ waiting: 'waitMany' as const, system: 'Rhythm, waitMany() per enqueueMany' }] : []),
  ];
  const contenders: Contender<EndToEndRun>[] = variants.map((v) => ({
    label: v.system,
    run: () =>
      endToEnd(db, 's8', {
        n,
        worker: { queue: 'default' },
        handler: (p: unknown) => p ?? null,
        payload: (i) => ({ i }),
        waiting: v.waiting,
        warmUp: 100,
        progress,
      }),
  }));
  const results = await interleave(opts.repeat, contenders, progress, TITLE);
  const base = results[0]!;
  variants.forEach((v, i) => {
    const res = results[i]!;
    const extra = median(res.map((x, k) => x.queries.selects - base[k]!.queries.selects));
    const pgExtra = res.every((x, k) => x.pgSelects !== undefined && base[k]!.pgSelects !== undefined)
      ? median(res.map((x, k) => x.pgSelects! - base[k]!.pgSelects!))
      : undefined;
    const selects = median(res.map((x) => x.queries.selects));
    const statements = median(res.map((x) => x.queries.statements));
    const row = rowOf(res as Run[], {
      group: '8',
      scenario: TITLE,
      system: v.system,
      kind: 'rhythm',
      reference: v.waiting === 'none',
      config:
        v.waiting === 'none'
          ? 'new Worker(r, { queue }); done ids counted on a LISTEN connection'
          : `new Worker(r, { queue }); ${v.waiting}()`,
      tasks: n,
      notes: [
        `Rhythm sent ${fmtInt(statements)} statements, ${fmtInt(selects)} SELECTs (client-side count)` +
          (v.waiting === 'none'
            ? ''
            : `: ${fmtInt(extra)} more SELECTs than without waits${pgExtra !== undefined ? ` (pg_stat_statements: ${fmtInt(pgExtra)})` : ''}, one per ${extra > 0 ? fmtInt(n / extra) : '∞'} ids`),
      ],
      extra: {
        waiting: v.waiting,
        statements,
        selects,
        extraSelects: v.waiting === 'none' ? 0 : extra,
        ...(pgExtra !== undefined ? { pgExtraSelects: pgExtra } : {}),
      },
    });
    ctx.rows.push(row);
  });
}
