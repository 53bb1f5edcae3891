/**
 * Scenario 4: wake-up latency. One idle worker in a process of its own; the bench enqueues
 * single tasks at a steady rate (open loop: a slow task does not delay the next enqueue) and
 * records enqueue-to-start (the handler stamps its start; clocks aligned by an IPC ping) and,
 * for Rhythm, enqueue-to-result (wait() resolving in the producer). Before any task, the idle
 * worker's own CPU use is measured over an idle window (process.cpuUsage in the worker).
 *
 * The floor of any enqueue-to-start is the enqueue's own durable commit (the task cannot be
 * seen before it). For Rhythm the same run measures it: single-row INSERT commits on a
 * connection of the bench's, at the same rate, with the idle worker running, and the time of
 * each enqueue() call itself.
 */
import * as hdr from 'hdr-histogram-js';
import pg from 'pg';
import type { Rhythm } from '../../src/index.js';
import type { WorkerUtils } from 'graphile-worker';
import type PgBoss from 'pg-boss';
import { epochMs, sleep, type Percentiles, type Row } from '../lib/common.js';
import type { BenchDatabase } from '../lib/database.js';
import type { BenchContext } from '../lib/context.js';
import { WorkerChild } from '../lib/children.js';
import type { ChildSystem } from '../child/worker-process.js';
import { openRhythm } from '../systems/rhythm.js';
import * as gw from '../peers/graphile-worker.js';
import * as pb from '../peers/pg-boss.js';

export const TITLE = '4. wake-up latency';

export function steps(o: BenchContext['opts']): number {
  return 1 + (o.peers ? 2 : 0);
}

interface Producer {
  schema: string;
  // biome-ignore lint/suspicious/noConfusingVoidType: a peer's enqueue returns no id at all.
  enqueue(k: number): Promise<string | void>;
  /** Resolves when the task's result is stored (systems that keep results). */
  result?(id: string): Promise<unknown>;
  close(): Promise<void>;
}

export function percentiles(valuesMs: number[]): Percentiles {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
  let sum = 0;
  for (const v of valuesMs) {
    h.recordValue(Math.max(1, Math.round(v * 1000))); // microseconds
    sum += v;
  }
  const at = (p: number) => h.getValueAtPercentile(p) / 1000;
  const out = {
    count: valuesMs.length,
    p50: at(50),
    p90: at(90),
    p99: at(99),
    max: h.maxValue / 1000,
    mean: valuesMs.length ? sum / valuesMs.length : 0,
  };
  h.destroy();
  return out;
}

/** Up to ~120 points of the empirical CDF. */
export function cdf(valuesMs: number[]): [number, number][] {
  const s = [...valuesMs].sort((a, b) => a - b);
  if (s.length === 0) return [];
  const points: [number, number][] = [];
  const step = Math.max(1, Math.floor(s.length / 120));
  for (let i = 0; i < s.length; i += step) points.push([s[i]!, (i + 1) / s.length]);
  points.push([s.at(-1)!, 1]);
  return points;
}

const LATENCY_WARMUP = 20;
const COMMIT_PROBES = 300;

/**
 * Milliseconds of single-row INSERT commits (autocommit, the server's synchronous_commit,
 * which is on unless --pg-setting changed it) on a connection of their own, `rate` a second.
 */
async function commitTimes(db: BenchDatabase, schema: string, n: number, rate: number): Promise<number[]> {
  const c = new pg.Client({ connectionString: db.url, application_name: 'rhythm-bench-commit' });
  c.on('error', () => undefined);
  await c.connect();
  try {
    const table = `"${schema}".bench_commit_probe`;
    await c.query(`CREATE TABLE ${table} (id bigserial PRIMARY KEY, payload jsonb NOT NULL)`);
    const out: number[] = [];
    const interval = 1000 / rate;
    for (let k = -LATENCY_WARMUP; k < n; k++) {
      const t0 = epochMs();
      await c.query(`INSERT INTO ${table} (payload) VALUES ($1)`, [{ k }]);
      const took = epochMs() - t0;
      if (k >= 0) out.push(took);
      if (interval - took > 0.5) await sleep(interval - took);
    }
    return out;
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function measure(ctx: BenchContext, system: ChildSystem, producer: Producer, probeCommits = false) {
  const { opts, db, progress } = ctx;
  const n = opts.latencyN;
  const child = new WorkerChild({ system, url: db.url, schema: producer.schema, role: 'latency' });
  try {
    await child.ready;
    child.start();
    await child.started;
    progress.begin('idle worker', 1);
    await sleep(500);
    const idle = await child.idleCpu(opts.idleMs);
    const offset = await child.clockOffset();
    let commits: number[] = [];
    if (probeCommits) {
      progress.begin('INSERT commits', 1);
      commits = await commitTimes(db, producer.schema, Math.min(n, COMMIT_PROBES), opts.latencyRate);
    }
    const sent = new Float64Array(n);
    const enqueued = new Float64Array(n).fill(Number.NaN);
    const started = new Float64Array(n).fill(Number.NaN);
    const results = new Float64Array(n).fill(Number.NaN);
    let nStarted = 0;
    let allStarted!: () => void;
    const everyStart = new Promise<void>((r) => (allStarted = r));
    child.onRun = (k, s) => {
      if (k >= 0 && k < n && Number.isNaN(started[k]!)) {
        started[k] = s - offset - sent[k]!;
        if (++nStarted === n) allStarted();
      }
    };
    const interval = 1000 / opts.latencyRate;
    // Warm-up, not measured, the same for every system: the first enqueues open the producer's
    // and the worker's connections (authentication, a new backend) and take 10-150 ms here.
    for (let i = 0; i < LATENCY_WARMUP; i++) {
      const id = await producer.enqueue(-1 - i);
      if (producer.result && id) await producer.result(id);
      await sleep(interval);
    }
    progress.begin(`${opts.latencyRate}/s single enqueues`, n);
    const pending: Promise<unknown>[] = [];
    const t0 = epochMs() + 5;
    for (let k = 0; k < n; k++) {
      const wait = t0 + k * interval - epochMs();
      if (wait > 0.5) await sleep(wait);
      sent[k] = epochMs();
      const p = producer.enqueue(k).then(async (id) => {
        enqueued[k] = epochMs() - sent[k]!;
        if (producer.result && id) {
          await producer.result(id);
          results[k] = epochMs() - sent[k]!;
        }
      });
      p.catch(() => undefined); // handled by Promise.all below
      pending.push(p);
      if (k % 10 === 0) progress.update(nStarted);
    }
    await Promise.race([everyStart, sleep(15_000)]);
    await Promise.all(pending);
    progress.update(nStarted);
    const seen = (a: Float64Array) => [...a].filter((x) => !Number.isNaN(x));
    return { idle, offset, starts: seen(started), results: seen(results), enqueues: seen(enqueued), commits, missing: n - nStarted };
  } finally {
    await child.stop().catch(() => undefined);
    await producer.close().catch(() => undefined);
  }
}

function rhythmProducer(r: Rhythm): Producer {
  return {
    schema: r.names.schema,
    enqueue: (k) => r.enqueue('noop', { k }),
    result: (id) => r.wait(id, { timeoutMs: 30_000 }),
    close: async () => {
      await r.shutdown({ timeoutMs: 1_000 });
    },
  };
}

function graphileProducer(schema: string, utils: WorkerUtils): Producer {
  return {
    schema,
    enqueue: async (k) => {
      await utils.addJob('noop', { k });
    },
    close: async () => {
      await utils.release();
    },
  };
}

function pgbossProducer(schema: string, boss: PgBoss): Producer {
  return {
    schema,
    enqueue: async (k) => {
      await boss.send(pb.QUEUE, { k });
    },
    close: () => pb.closeBoss(boss),
  };
}

export async function run(ctx: BenchContext): Promise<void> {
  const { opts, db, progress } = ctx;
  const config = `${opts.latencyRate}/s x ${opts.latencyN}`;
  const idleNote = (idle: { share: number; cpuMs: number }) =>
    `idle worker CPU ${(idle.share * 100).toFixed(2)}% of a core (${idle.cpuMs.toFixed(0)} ms in ${(opts.idleMs / 1000).toFixed(1)} s)`;
  const row = (system: string, kind: Row['kind'], what: string, values: number[], extra: Partial<Row>): Row => ({
    group: '4',
    scenario: TITLE,
    system,
    kind,
    config,
    tasks: values.length,
    latency: { ...percentiles(values), what },
    cdf: cdf(values),
    ...extra,
  });

  progress.next(`${TITLE} · Rhythm`);
  const r = await openRhythm(db, 's4');
  const rh = await measure(ctx, 'rhythm', rhythmProducer(r), true);
  await db.dropSchema(r.names.schema).catch(() => undefined);
  ctx.rows.push(
    row('Rhythm', 'rhythm', 'enqueue→start', rh.starts, {
      reference: true,
      done: rh.starts.length,
      verified: rh.missing === 0,
      notes: [idleNote(rh.idle), ...(rh.missing ? [`${rh.missing} never started`] : [])],
      extra: { idleCpuShare: rh.idle.share, idleCpuMs: rh.idle.cpuMs, idleMs: opts.idleMs, clockOffsetMs: rh.offset },
    }),
  );
  ctx.rows.push(row('Rhythm', 'rhythm', 'enqueue→result', rh.results, { notes: ['wait() resolved in the producer'] }));
  ctx.rows.push(
    row('Rhythm', 'rhythm', 'enqueue() call', rh.enqueues, {
      notes: ["the producer's enqueue() until it resolved: its INSERT and durable commit"],
    }),
  );
  ctx.rows.push(
    row('Postgres', 'baseline', 'INSERT commit', rh.commits, {
      config: `${opts.latencyRate}/s x ${rh.commits.length}, synchronous_commit ${db.settings.synchronous_commit}`,
      notes: ['one-row INSERT, autocommit, on a connection of its own, idle worker running: the floor of enqueue→start'],
    }),
  );

  if (opts.peers) {
    progress.next(`${TITLE} · graphile-worker`);
    const g = await gw.openSchema(db, 's4');
    const gr = await measure(ctx, 'graphile-worker', graphileProducer(g.schema, g.utils));
    await db.dropSchema(g.schema).catch(() => undefined);
    ctx.rows.push(
      row(gw.NAME, 'peer', 'enqueue→start', gr.starts, {
        config: `${config}; ${gw.describeConfig(gw.LATENCY_CONFIG)}`,
        done: gr.starts.length,
        verified: gr.missing === 0,
        notes: [idleNote(gr.idle), 'no results (a non-goal of graphile-worker)', ...(gr.missing ? [`${gr.missing} never started`] : [])],
        extra: { idleCpuShare: gr.idle.share, idleCpuMs: gr.idle.cpuMs, idleMs: opts.idleMs, clockOffsetMs: gr.offset },
      }),
    );

    progress.next(`${TITLE} · pg-boss`);
    const p = await pb.openSchema(db, 's4');
    const pr = await measure(ctx, 'pg-boss', pgbossProducer(p.schema, p.boss));
    await db.dropSchema(p.schema).catch(() => undefined);
    ctx.rows.push(
      row(pb.NAME, 'peer', 'enqueue→start', pr.starts, {
        config: `${config}; ${pb.describeConfig(pb.LATENCY_CONFIG)}`,
        done: pr.starts.length,
        verified: pr.missing === 0,
        notes: [
          idleNote(pr.idle),
          `polls every ${pb.LATENCY_CONFIG.pollingIntervalSeconds} s (its minimum)`,
          ...(pr.missing ? [`${pr.missing} never started`] : []),
        ],
        extra: { idleCpuShare: pr.idle.share, idleCpuMs: pr.idle.cpuMs, idleMs: opts.idleMs, clockOffsetMs: pr.offset },
      }),
    );
  }
}
