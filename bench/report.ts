/**
 * The bench's output: ratios to Rhythm (medians of per-round ratios), the goals checked
 * against the measured rows, a Markdown table (stdout), and JSON + an SVG chart (throughput by
 * scenario, latency CDF) under bench/results/, stamped with the machine's details.
 */
import { mkdirSync, writeFileSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import { fmtInt, type Row } from './lib/common.js';
import { fmtSpread, ratioOf, type Spread } from './lib/rounds.js';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGb: number;
  os: string;
  node: string;
  postgres: string;
  database: string;
  pgSettings: Record<string, string>;
  loadAverageAtStart: number[];
  versions: Record<string, string>;
}

export interface Goal {
  /** Which set of goals it belongs to (one table each). */
  set: string;
  id: string;
  goal: string;
  measured: string;
  /** null: not measured in this run. */
  met: boolean | null;
}

export interface Report {
  startedAt: string;
  finishedAt: string;
  quick: boolean;
  argv: string[];
  machine: Machine;
  calibration?: { nsPerRound: number; rounds1: number; rounds10: number };
  /** Interleaved rounds per measurement (--repeat). */
  repeat?: number;
  rows: Row[];
  goals: Goal[];
  errors: { scenario: string; error: string }[];
  timings?: { step: string; seconds: number }[];
}

/** Fills row.ratio: rate / the group's reference rate; latency rows: p50 / the reference p50. */
export function computeRatios(rows: Row[]): void {
  const groups = new Map<string, Row[]>();
  for (const r of rows) groups.set(r.group, [...(groups.get(r.group) ?? []), r]);
  for (const rs of groups.values()) {
    const ref = rs.find((r) => r.reference);
    if (!ref) continue;
    for (const r of rs) {
      if (ref.rate && r.rate !== undefined) {
        const q = ratioOf(r, ref)!;
        r.ratio = q.median;
        if (q.n > 1) r.ratioSpread = [q.min, q.max];
      } else if (ref.latency && r.latency && r.latency.what === ref.latency.what && ref.latency.p50 > 0)
        r.ratio = r.latency.p50 / ref.latency.p50;
    }
  }
}

const find = (rows: Row[], group: string, system: string, what?: string) =>
  rows.find((r) => r.group === group && r.system === system && (what === undefined || r.latency?.what === what));

const x = (v: number) => `${v.toFixed(2)}x`;
const rates = (a: Row, b: Row) => `${fmtInt(a.rate!)} vs ${fmtInt(b.rate!)}/s`;

/** a / b over the interleaved rounds, when both rows were measured. */
function compare(a: Row | undefined, b: Row | undefined): Spread | undefined {
  return a?.rate && b?.rate ? ratioOf(a, b) : undefined;
}

/** The throughput and latency goals set when the bench was written. */
function firstGoals(rows: Row[]): Goal[] {
  const set = 'peers and baselines';
  const goals: Goal[] = [];
  const rh1 = find(rows, '1', 'Rhythm');
  const gw1 = find(rows, '1', 'graphile-worker');
  const q1 = compare(rh1, gw1);
  goals.push({
    set,
    id: '1',
    goal: 'Scenario 1 >= 1.5x graphile-worker (best config)',
    measured: q1 ? `${fmtSpread(q1, 'x')} (${rates(rh1!, gw1!)})` : 'not measured',
    met: q1 ? q1.median >= 1.5 : null,
  });
  const rh2 = find(rows, '2', 'Rhythm');
  // Scenario 2 and graphile-worker's scenario-1 rows ran in different rounds: a ratio of medians.
  const q2 = rh2?.rate && gw1?.rate ? ratioOf({ rate: rh2.rate }, { rate: gw1.rate }) : undefined;
  goals.push({
    set,
    id: '2a',
    goal: 'Scenario 2 >= 1.5x graphile-worker (its scenario-1 best; ratio of medians)',
    measured: q2 ? `${x(q2.median)} (${rates(rh2!, gw1!)})` : 'not measured',
    met: q2 ? q2.median >= 1.5 : null,
  });
  const pis2 = find(rows, '2', 'Piscina (raw)');
  const q2b = compare(rh2, pis2);
  goals.push({
    set,
    id: '2b',
    goal: 'Scenario 2 above raw Piscina, one run() per task',
    measured: q2b ? `${fmtSpread(q2b, 'x')} (${rates(rh2!, pis2!)})` : 'not measured',
    met: q2b ? q2b.median > 1 : null,
  });
  for (const [g, label, target] of [
    ['3a', '~1 ms', 0.95],
    ['3b', '~10 ms', 0.98],
  ] as const) {
    const rh = find(rows, g, 'Rhythm (defaults)');
    const pis = find(rows, g, 'Piscina (raw)');
    const eff = compare(rh, pis);
    goals.push({
      set,
      id: g,
      goal: `Scenario 3 ${label} task: >= ${target * 100}% of raw Piscina`,
      measured: eff ? `${fmtSpread(eff, '%')} (${rates(rh!, pis!)})` : 'not measured',
      met: eff ? eff.median >= target : null,
    });
  }
  const st = find(rows, '4', 'Rhythm', 'enqueue→start');
  goals.push({
    set,
    id: '4a',
    goal: 'Scenario 4 enqueue-to-start p50 < 2 ms',
    measured: st?.latency ? `${st.latency.p50.toFixed(2)} ms` : 'not measured',
    met: st?.latency ? st.latency.p50 < 2 : null,
  });
  const rh5 = find(rows, '5', 'Rhythm');
  goals.push({
    set,
    id: '5',
    goal: 'Scenario 5 enqueueMany >= 100,000 tasks/s',
    measured: rh5?.rate ? `${fmtInt(rh5.rate)}/s` : 'not measured',
    met: rh5?.rate ? rh5.rate >= 100_000 : null,
  });
  const p1 = rows.find((r) => r.group === '6' && r.extra?.processes === 1);
  const p2 = rows.find((r) => r.group === '6' && r.extra?.processes === 2);
  const busy1 = p1?.extra?.cpuBusy as number | undefined;
  const q6 = compare(p2, p1);
  goals.push({
    set,
    id: '6',
    goal: 'Scenario 6: 2 processes >= 1.6x one process (where Postgres has CPU to spare)',
    measured: q6
      ? `${fmtSpread(q6, 'x')} (${rates(p2!, p1!)}; CPU ${busy1 !== undefined ? `${(busy1 * 100).toFixed(0)}% busy` : '?'} with one process)`
      : 'not measured',
    met: q6 ? q6.median >= 1.6 : null,
  });
  return goals;
}

/**
 * CPU tasks at raw-thread speed, fast defaults, wait() at scale, and latency measured against
 * the enqueue's own commit. The CPU limits are those of 2 cores shared with Postgres, where a
 * task's claim, settle and main-thread work take ~50 µs of the cores the task threads need.
 */
export const CPU_LIMITS: Record<'7a' | '7b', number> = { '7a': 0.95, '7b': 0.995 };

function secondGoals(rows: Row[]): Goal[] {
  const set = 'CPU tasks, wait() at scale';
  const goals: Goal[] = [];
  for (const [g, label, target] of [
    ['7a', '~1 ms', 0.9],
    ['7b', '~10 ms', 0.97],
  ] as const) {
    const rh = find(rows, g, 'Rhythm (defaults)');
    const pis = find(rows, g, 'Piscina (raw)');
    const eff = compare(rh, pis);
    const limit = CPU_LIMITS[g];
    const model = rh?.extra?.modelLimit as number | undefined;
    goals.push({
      set,
      id: `1${g.slice(1)}`,
      goal: `CPU tasks end to end (enqueueMany, wait() per id), ${label}: >= ${target * 100}% of raw Piscina`,
      measured: eff
        ? `${fmtSpread(eff, '%')} (${rates(rh!, pis!)}); limit ~${(limit * 100).toFixed(1)}% on 2 cores shared with Postgres: ` +
          `${((limit - eff.median) * 100).toFixed(1)} points below it` +
          (model !== undefined
            ? `; measured extra CPU ${(rh!.extra!.extraCpuUs as number).toFixed(0)} µs a task -> limit ${(model * 100).toFixed(1)}%`
            : '') +
          (typeof rh!.extra?.threadsBusy === 'number' && typeof pis!.extra?.threadsBusy === 'number'
            ? `; threads busy ${((rh!.extra.threadsBusy as number) * 100).toFixed(1)}% of the round (raw Piscina ${((pis!.extra.threadsBusy as number) * 100).toFixed(1)}%)`
            : '')
        : 'not measured',
      met: eff ? eff.median >= target : null,
    });
  }
  const d1 = find(rows, '1', 'Rhythm (defaults)');
  const gw1 = find(rows, '1', 'graphile-worker');
  const q1 = compare(d1, gw1);
  goals.push({
    set,
    id: '2a',
    goal: "Untuned new Worker(r, { queue }), no-op main thread (scenario 1): >= 1.5x graphile-worker's best config",
    measured: q1 ? `${fmtSpread(q1, 'x')} (${rates(d1!, gw1!)})` : 'not measured',
    met: q1 ? q1.median >= 1.5 : null,
  });
  const d2 = find(rows, '2', 'Rhythm (defaults)');
  const pis2 = find(rows, '2', 'Piscina (raw)');
  const q2 = compare(d2, pis2);
  goals.push({
    set,
    id: '2b',
    goal: 'Untuned worker with `threads` set, no-op (scenario 2): >= 1.2x raw Piscina, one run() per task',
    measured: q2 ? `${fmtSpread(q2, 'x')} (${rates(d2!, pis2!)})` : 'not measured',
    met: q2 ? q2.median >= 1.2 : null,
  });
  const none = rows.find((r) => r.group === '8' && r.extra?.waiting === 'none');
  const waited = rows.find((r) => r.group === '8' && r.extra?.waiting === 'wait');
  // Time with waits / time without = rate without / rate with.
  const q3 = compare(none, waited);
  goals.push({
    set,
    id: '3a',
    goal: `Drain of ${waited ? fmtInt(waited.tasks) : 'N'} no-op tasks with a wait() on each id: <= 1.2x the time without`,
    measured: q3 ? `${fmtSpread(q3, 'x')} the time (${rates(waited!, none!)})` : 'not measured',
    met: q3 ? q3.median <= 1.2 : null,
  });
  const extra = waited?.extra?.extraSelects as number | undefined;
  goals.push({
    set,
    id: '3b',
    goal: 'Concurrent wait() calls coalesce their reads: <= 1 SELECT per ~100 ids',
    measured:
      extra !== undefined
        ? `${fmtInt(extra)} SELECTs for ${fmtInt(waited!.tasks)} waits (one per ${extra > 0 ? fmtInt(waited!.tasks / extra) : '∞'} ids; counted on Rhythm's connections${waited!.extra!.pgExtraSelects !== undefined ? `, pg_stat_statements ${fmtInt(waited!.extra!.pgExtraSelects as number)}` : ''})`
        : 'not measured',
    met: extra !== undefined ? extra <= waited!.tasks / 100 : null,
  });
  const st = find(rows, '4', 'Rhythm', 'enqueue→start');
  const commit = find(rows, '4', 'Postgres', 'INSERT commit');
  const enq = find(rows, '4', 'Rhythm', 'enqueue() call');
  const gap = st?.latency && commit?.latency ? st.latency.p50 - commit.latency.p50 : undefined;
  goals.push({
    set,
    id: '4a',
    goal: "Enqueue-to-start p50 within 1 ms of the enqueue's own durable commit (p50 of a one-row INSERT commit, same run)",
    measured:
      gap !== undefined
        ? `${st!.latency!.p50.toFixed(2)} ms vs commit ${commit!.latency!.p50.toFixed(2)} ms: ${gap >= 0 ? '+' : ''}${gap.toFixed(2)} ms${enq?.latency ? ` (enqueue() call p50 ${enq.latency.p50.toFixed(2)} ms)` : ''}` +
          // Calls far slower than a lone commit queued behind each other: the producer could not keep its rate.
          (enq?.latency && enq.latency.p50 > 10 * commit!.latency!.p50
            ? '; the enqueue() calls queued up (the producer fell behind its schedule): an overloaded machine, not a wake-up figure'
            : '')
        : 'not measured',
    met: gap !== undefined ? gap <= 1 : null,
  });
  goals.push({
    set,
    id: '4b',
    goal: 'Enqueue-to-start p99 < 10 ms',
    measured: st?.latency
      ? `${st.latency.p99.toFixed(2)} ms${commit?.latency ? ` (commit p99 ${commit.latency.p99.toFixed(2)} ms)` : ''}`
      : 'not measured',
    met: st?.latency ? st.latency.p99 < 10 : null,
  });
  const idle = st?.extra?.idleCpuShare as number | undefined;
  goals.push({
    set,
    id: '4c',
    goal: 'No busy polling: idle worker CPU near zero (< 1% of a core)',
    measured: idle !== undefined ? `${(idle * 100).toFixed(2)}% of a core` : 'not measured',
    met: idle !== undefined ? idle < 0.01 : null,
  });
  return goals;
}

export function evaluateGoals(rows: Row[]): Goal[] {
  return [...firstGoals(rows), ...secondGoals(rows)];
}

const ms = (v: number | undefined) => (v === undefined ? '' : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : fmtInt(v));

export function markdown(report: Report): string {
  const { machine: m } = report;
  const lines: string[] = [];
  lines.push(`## Rhythm bench ${report.quick ? '(--quick) ' : ''}· ${report.startedAt}`);
  lines.push('');
  lines.push(
    `${m.cpu}, ${m.cores} cores, ${m.memoryGb} GB · ${m.os} · Node ${m.node} · PostgreSQL ${m.postgres} (${m.database}; synchronous_commit ${m.pgSettings.synchronous_commit}, fsync ${m.pgSettings.fsync}) · load avg at start ${m.loadAverageAtStart.map((l) => l.toFixed(2)).join(' ')}`,
  );
  lines.push('');
  if ((report.repeat ?? 1) > 1) {
    lines.push(
      `Rates: the median of ${report.repeat} interleaved rounds (every system of a scenario once a round: A, B, then B, A, ...), lowest-highest round in brackets. "vs Rhythm": the median of the per-round ratios to the scenario's reference row, lowest-highest in brackets.`,
    );
    lines.push('');
  }
  lines.push('| Scenario | System | Config | Tasks | Rate (tasks/s) | vs Rhythm | p50 ms | p90 ms | p99 ms | max ms | Done | Notes |');
  lines.push('|---|---|---|---:|---:|---:|---:|---:|---:|---:|:---:|---|');
  for (const r of report.rows) {
    const system = r.latency ? `${r.system} (${r.latency.what})` : r.system;
    const ratio =
      r.ratio === undefined
        ? ''
        : r.latency
          ? `p50 ${r.ratio.toFixed(2)}x`
          : `${r.ratio.toFixed(2)}x${r.ratioSpread && !r.reference ? ` (${r.ratioSpread[0].toFixed(2)}-${r.ratioSpread[1].toFixed(2)})` : ''}`;
    const rate =
      r.rate === undefined
        ? ''
        : `${fmtInt(r.rate)}${r.rounds && r.rounds.length > 1 ? ` (${shortRate(Math.min(...r.rounds))}-${shortRate(Math.max(...r.rounds))})` : ''}`;
    const done = r.verified === undefined ? '' : r.verified ? `✓ ${fmtInt(r.done ?? 0)}` : `✗ ${fmtInt(r.done ?? 0)}`;
    lines.push(
      `| ${r.scenario} | ${system} | ${r.config} | ${fmtInt(r.tasks)} | ${rate} | ${ratio} | ${ms(r.latency?.p50)} | ${ms(r.latency?.p90)} | ${ms(r.latency?.p99)} | ${ms(r.latency?.max)} | ${done} | ${(r.notes ?? []).join('; ')} |`,
    );
  }
  if (report.calibration) {
    const c = report.calibration;
    lines.push('');
    lines.push(
      `sha256 chain calibrated on this machine: ${c.nsPerRound.toFixed(0)} ns a round -> ${c.rounds1} rounds ~1 ms, ${c.rounds10} rounds ~10 ms.`,
    );
  }
  const swept = report.rows.filter((r) => r.sweep && r.sweep.length > 1);
  if (swept.length) {
    lines.push('');
    lines.push('Configurations swept (the best is in the table):');
    lines.push('');
    for (const r of swept)
      lines.push(
        `- ${r.scenario} · ${r.system}: ${r.sweep!.map((s) => `${s.config} -> ${fmtInt(s.rate)}/s`).join(' · ')} (one run each, before the rounds)`,
      );
  }
  const withStats = report.rows.filter((r) => Array.isArray(r.extra?.pgStatements));
  for (const r of withStats) {
    lines.push('');
    lines.push(`Postgres execution time per statement, ${r.scenario} · ${r.system} (${r.config}; pg_stat_statements):`);
    lines.push('');
    lines.push('| Statement | Calls | Rows | Total ms | µs a row |');
    lines.push('|---|---:|---:|---:|---:|');
    for (const st of r.extra!.pgStatements as { query: string; calls: number; rows: number; totalMs: number; usPerRow: number | null }[]) {
      lines.push(
        `| \`${st.query.replace(/\|/g, '\\|')}\` | ${fmtInt(st.calls)} | ${fmtInt(st.rows)} | ${st.totalMs.toFixed(1)} | ${st.usPerRow === null ? '' : st.usPerRow.toFixed(1)} |`,
      );
    }
  }
  for (const set of [...new Set(report.goals.map((g) => g.set))]) {
    lines.push('');
    lines.push(`### Goals (${set})`);
    lines.push('');
    lines.push('| # | Goal | Measured | Met |');
    lines.push('|---|---|---|:---:|');
    for (const g of report.goals.filter((x) => x.set === set))
      lines.push(`| ${g.id} | ${g.goal} | ${g.measured} | ${g.met === null ? '–' : g.met ? 'yes' : 'no'} |`);
  }
  if (report.errors.length) {
    lines.push('');
    lines.push('### Errors');
    for (const e of report.errors) lines.push(`- ${e.scenario}: ${e.error}`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------- SVG

const COLORS: Record<Row['kind'], string> = { rhythm: '#2563eb', peer: '#ea580c', baseline: '#9ca3af' };
const LINE_COLORS = ['#2563eb', '#60a5fa', '#ea580c', '#a855f7', '#16a34a', '#dc2626'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function niceLogTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= min && v <= max) ticks.push(v);
    }
  }
  return ticks;
}

/** A rate in a few characters: 164, 2.7k, 41.2k. */
function shortRate(v: number): string {
  return v >= 1_000 ? shortNum(v) : fmtInt(v);
}

function shortNum(v: number): string {
  if (v >= 1_000_000) return `${+(v / 1_000_000).toFixed(1)}M`;
  if (v >= 1_000) return `${+(v / 1_000).toFixed(1)}k`;
  return `${+v.toFixed(2)}`;
}

export function svg(report: Report): string {
  const W = 1000;
  const bars = report.rows.filter((r) => r.rate !== undefined && r.rate > 0);
  const curves = report.rows.filter((r) => r.cdf && r.cdf.length > 1);
  const barH = 16;
  const left = 330;
  const right = 90;
  const top = 70;
  const groupGap = 14;
  const groups = [...new Set(bars.map((r) => r.group))];
  const barsHeight = bars.length * (barH + 4) + groups.length * (barH + 4 + groupGap) + 40;
  const cdfTop = top + barsHeight + 50;
  const cdfH = curves.length ? 300 : 0;
  const H = cdfTop + cdfH + (curves.length ? 70 : 0) + 20;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  const m = report.machine;
  out.push(
    `<text x="20" y="26" font-size="17" font-weight="bold">Rhythm bench${report.quick ? ' (--quick)' : ''}: throughput by scenario</text>`,
  );
  out.push(
    `<text x="20" y="46" fill="#444">${esc(`${m.cpu}, ${m.cores} cores, ${m.memoryGb} GB · Node ${m.node} · PostgreSQL ${m.postgres} · ${report.startedAt}`)}</text>`,
  );

  if (bars.length) {
    const maxRate = Math.max(...bars.map((r) => r.rate!));
    const minRate = Math.min(100, ...bars.map((r) => r.rate!));
    const lo = 10 ** Math.floor(Math.log10(minRate));
    const hi = 10 ** Math.ceil(Math.log10(maxRate));
    const plotW = W - left - right;
    const sx = (v: number) => left + ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotW;
    const axisY = top + barsHeight - 30;
    for (const t of niceLogTicks(lo, hi)) {
      out.push(`<line x1="${sx(t).toFixed(1)}" y1="${top - 6}" x2="${sx(t).toFixed(1)}" y2="${axisY}" stroke="#e5e7eb"/>`);
      out.push(`<text x="${sx(t).toFixed(1)}" y="${axisY + 14}" text-anchor="middle" fill="#555">${shortNum(t)}</text>`);
    }
    out.push(`<text x="${left + plotW / 2}" y="${axisY + 30}" text-anchor="middle" fill="#333">tasks per second (log scale)</text>`);
    let y = top;
    let lastGroup = '';
    for (const r of bars) {
      if (r.group !== lastGroup) {
        if (lastGroup) y += groupGap;
        out.push(`<text x="20" y="${y + 11}" font-weight="bold" fill="#111">${esc(r.scenario)}</text>`);
        y += barH + 4;
        lastGroup = r.group;
      }
      const w = Math.max(1, sx(r.rate!) - left);
      out.push(`<text x="${left - 8}" y="${y + 12}" text-anchor="end" fill="#222">${esc(r.system)}</text>`);
      out.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${COLORS[r.kind]}"/>`);
      const ratio = r.ratio !== undefined && !r.reference ? ` (${r.ratio.toFixed(2)}x)` : '';
      out.push(`<text x="${(left + w + 5).toFixed(1)}" y="${y + 12}" fill="#222">${fmtInt(r.rate!)}${ratio}</text>`);
      y += barH + 4;
    }
    let lx = W - 330;
    for (const [k, label] of [
      ['rhythm', 'Rhythm'],
      ['peer', 'peer'],
      ['baseline', 'raw baseline'],
    ] as const) {
      out.push(`<rect x="${lx}" y="56" width="12" height="12" fill="${COLORS[k]}"/><text x="${lx + 16}" y="66">${label}</text>`);
      lx += 100;
    }
  }

  if (curves.length) {
    const title = cdfTop - 22;
    out.push(`<text x="20" y="${title}" font-size="17" font-weight="bold">Wake-up latency CDF (${esc(curves[0]!.config)})</text>`);
    const l = 80;
    const plotW = W - l - 260;
    const allX = curves.flatMap((c) => c.cdf!.map((p) => p[0]));
    const lo = 10 ** Math.floor(Math.log10(Math.max(0.01, Math.min(...allX))));
    const hi = 10 ** Math.ceil(Math.log10(Math.max(...allX)));
    const sx = (v: number) => l + ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotW;
    const sy = (f: number) => cdfTop + cdfH - f * cdfH;
    for (const t of niceLogTicks(lo, hi)) {
      out.push(`<line x1="${sx(t).toFixed(1)}" y1="${cdfTop}" x2="${sx(t).toFixed(1)}" y2="${cdfTop + cdfH}" stroke="#e5e7eb"/>`);
      out.push(`<text x="${sx(t).toFixed(1)}" y="${cdfTop + cdfH + 16}" text-anchor="middle" fill="#555">${shortNum(t)}</text>`);
    }
    for (const f of [0, 0.25, 0.5, 0.75, 0.9, 1]) {
      out.push(`<line x1="${l}" y1="${sy(f).toFixed(1)}" x2="${l + plotW}" y2="${sy(f).toFixed(1)}" stroke="#e5e7eb"/>`);
      out.push(
        `<text x="${l - 6}" y="${(sy(f) + 4).toFixed(1)}" text-anchor="end" fill="#555">${f === 0 || f === 1 ? f : `p${Math.round(f * 100)}`}</text>`,
      );
    }
    out.push(`<text x="${l + plotW / 2}" y="${cdfTop + cdfH + 34}" text-anchor="middle" fill="#333">milliseconds (log scale)</text>`);
    curves.forEach((c, i) => {
      const color = LINE_COLORS[i % LINE_COLORS.length]!;
      const pts = c.cdf!.map(([v, f]) => `${sx(v).toFixed(1)},${sy(f).toFixed(1)}`).join(' ');
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts}"/>`);
      const ly = cdfTop + 14 + i * 20;
      out.push(`<line x1="${l + plotW + 20}" y1="${ly - 4}" x2="${l + plotW + 40}" y2="${ly - 4}" stroke="${color}" stroke-width="3"/>`);
      out.push(`<text x="${l + plotW + 46}" y="${ly}">${esc(`${c.system} ${c.latency?.what ?? ''}`)}</text>`);
    });
  }
  out.push('</svg>');
  return out.join('\n');
}

/** Writes results-<stamp>.json/.svg and latest.json/.svg; returns the paths written. */
export function writeResults(dir: string, report: Report): { json: string; svg: string } {
  mkdirSync(dir, { recursive: true });
  const stamp = report.startedAt.replace(/[:.]/g, '-');
  const json = path.join(dir, `results-${stamp}.json`);
  const svgPath = path.join(dir, `results-${stamp}.svg`);
  writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(svgPath, `${svg(report)}\n`);
  copyFileSync(json, path.join(dir, 'latest.json'));
  copyFileSync(svgPath, path.join(dir, 'latest.svg'));
  return { json, svg: svgPath };
}
