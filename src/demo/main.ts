/**
 * `npm start`: the seed's unified-process deployment on one machine. It starts (or reuses)
 * the embedded Postgres unless a database URL is configured, the internal worker, a
 * `default` worker running an I/O-style handler on the main thread and a `high-cpu` worker
 * running the CPU modules of tasks/ on a Piscina pool; enqueues a demo batch, shows progress,
 * prints a summary, and shuts down cleanly (Ctrl+C shuts down early, gracefully).
 *
 * With --dashboard (`npm start -- --dashboard`, or `npm start --dashboard`, which npm passes
 * as npm_config_dashboard) it also serves the web dashboard from the start, prints its
 * address, and keeps serving after the batch until Ctrl+C.
 */
import os from 'node:os';
import { fromEnvironment } from '../config/resolve.js';
import { Rhythm, Worker, startDashboard, type DashboardServer, type EnqueueItem, type ExecutionPage } from '../index.js';
import { openDatabase, defaultDataDir } from '../db/local.js';
import { createLogger, maskUrl } from '../logger.js';
import submitReport from '../../tasks/submit-report.js';

const TASKS = new URL('../../tasks/', import.meta.url);
const REPORTS = 2_000;
const HASHES = 2_000;
const DELAYED = 20;

/** Whether the dashboard was asked for; anything else on the command line is a mistake worth naming. */
function wantsDashboard(): boolean {
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => a !== '--dashboard');
  if (unknown.length > 0) throw new Error(`unknown argument ${JSON.stringify(unknown[0])} (the demo takes only --dashboard)`);
  return args.includes('--dashboard') || process.env.npm_config_dashboard === 'true';
}

async function main(): Promise<void> {
  const started = Date.now();
  const withDashboard = wantsDashboard();
  const db = await openDatabase();
  console.log(
    db.embedded
      ? `Postgres: embedded server, data in ${db.embedded.dataDir}${db.embedded.realDataDir !== db.embedded.dataDir ? ` (a link to ${db.embedded.realDataDir}, which the postgres user can reach)` : ''} (kept across runs; RHYTHM_DATA_DIR moves it)`
      : `Postgres: ${maskUrl(db.url)}`,
  );
  // Quieter than the library's default: the demo prints its own story.
  const logger = createLogger({ level: fromEnvironment('logLevel')?.value ?? 'warn' });
  const r = await Rhythm.init({ databaseUrl: db.url, autoMigrate: true, logger, retryBackoff: { baseMs: 200, maxMs: 2_000 } });
  await r.startInternalWorker({ tickMs: 200 });
  let dashboard: DashboardServer | undefined;
  if (withDashboard) {
    dashboard = await startDashboard(r, {
      port: fromEnvironment('dashboardPort')?.value ?? 8080,
      host: fromEnvironment('dashboardHost')?.value ?? '127.0.0.1',
    });
    console.log(`Dashboard: ${dashboard.url} (serving until Ctrl+C)`);
  }

  const threads = os.availableParallelism();
  const io = new Worker(r, { queue: 'default', concurrency: 200 });
  io.task('submit-report', submitReport);
  const cpu = new Worker(r, { queue: 'high-cpu', threads });
  cpu.task('sha256-chain', new URL('sha256-chain.js', TASKS));
  const workers = Promise.all([io.start(), cpu.start()]);

  let interrupted = false;
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    console.log('\nInterrupted: shutting down gracefully...');
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const items: EnqueueItem[] = [
    ...Array.from({ length: REPORTS }, (_, i) => ({ name: 'submit-report', payload: { reportId: i } })),
    ...Array.from({ length: HASHES }, (_, i) => ({
      name: 'sha256-chain',
      payload: { seed: `demo-${i}`, rounds: 1_000 },
      options: { queue: 'high-cpu' },
    })),
    ...Array.from({ length: DELAYED }, (_, i) => ({
      name: 'submit-report',
      payload: { reportId: 100_000 + i },
      options: { delayMs: 1_500 },
    })),
    // Invalid on purpose: fails, is retried with backoff, then ends `failed` with its error.
    { name: 'sha256-chain', payload: { rounds: -1 }, options: { queue: 'high-cpu', maxAttempts: 2 } },
    // Jumps the queue.
    { name: 'sha256-chain', payload: { seed: 'urgent', rounds: 10 }, options: { queue: 'high-cpu', priority: 10 } },
  ];
  const enqueueStart = Date.now();
  const ids = await r.enqueueMany(items);
  const enqueueMs = Date.now() - enqueueStart;
  console.log(
    `Enqueued ${ids.length} tasks in ${enqueueMs} ms (one statement per 10,000): ${REPORTS} submit-report on "default", ${HASHES} sha256-chain on "high-cpu" (${threads} threads), ${DELAYED} delayed by 1.5 s, 1 that fails, 1 high-priority.`,
  );

  // The public admin API only: the status report's counts of the two queues (finished ones
  // within the time since this batch was enqueued), and a page-by-page list for the summary.
  const counts = async () => {
    const report = await r.status({ windowMs: Date.now() - enqueueStart + 1_000 });
    const c = { scheduled: 0, queued: 0, running: 0, completed: 0, failed: 0, cancelled: 0 };
    for (const q of report.queues) {
      if (q.queue !== 'default' && q.queue !== 'high-cpu') continue;
      for (const k of Object.keys(c) as (keyof typeof c)[]) c[k] += q[k];
    }
    return c;
  };
  const tty = process.stdout.isTTY;
  for (;;) {
    const c = await counts();
    const finished = c.completed + c.failed + c.cancelled;
    const line = `  ${Math.min(finished, ids.length)}/${ids.length} finished  (completed ${c.completed}, failed ${c.failed}, running ${c.running}, queued ${c.queued}, scheduled ${c.scheduled})`;
    process.stdout.write(tty ? `\r${line}` : `${line}\n`);
    if ((finished >= ids.length && c.scheduled + c.queued + c.running === 0) || interrupted) break;
    await new Promise((res) => setTimeout(res, tty ? 200 : 1_000));
  }
  if (tty) process.stdout.write('\n');
  const drainMs = Date.now() - enqueueStart;

  if (!interrupted) {
    const stats = await latencies(r, new Set(ids));
    console.log(
      `\nAll ${ids.length} tasks finished in ${drainMs} ms (${Math.round((ids.length / drainMs) * 1000)} tasks/s including the 1.5 s delayed ones).`,
    );
    console.log('\n| task | status | count | enqueue-to-finish p50 | p99 |\n|---|---|---|---|---|');
    for (const s of stats) console.log(`| ${s.name} | ${s.status} | ${s.n} | ${s.p50.toFixed(1)} ms | ${s.p99.toFixed(1)} ms |`);
    const hash = await r.get(ids[REPORTS]!);
    console.log(`\nA result: sha256-chain ${JSON.stringify(hash?.payload)} -> ${JSON.stringify(hash?.result)}`);
    const failed = await r.get(ids[REPORTS + HASHES + DELAYED]!);
    console.log(`A failure: after ${failed?.attempts} attempts, ${failed?.status}: ${failed?.error?.name}: ${failed?.error?.message}`);
  }

  if (dashboard) {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!interrupted) {
      console.log(`\nDashboard still serving at ${dashboard.url}: press Ctrl+C to stop.`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          console.log('\nStopping the dashboard and shutting down...');
          resolve();
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    }
    await dashboard.close();
  }
  await r.shutdown({ timeoutMs: 10_000 });
  await workers;
  await db.embedded?.stop();
  console.log(
    `Shut down cleanly after ${((Date.now() - started) / 1000).toFixed(1)} s.${db.embedded ? ` Data kept in ${defaultDataDir()}.` : ''}`,
  );
}

/** Enqueue-to-finish time per task name and status, over this batch (read with r.list()). */
async function latencies(r: Rhythm, ids: Set<string>): Promise<{ name: string; status: string; n: number; p50: number; p99: number }[]> {
  const first = await r.get([...ids][0]!);
  const groups = new Map<string, number[]>();
  let cursor: string | null = null;
  do {
    const page: ExecutionPage = await r.list({ since: first?.createdAt, limit: 1_000, cursor });
    for (const e of page.items) {
      if (!ids.has(e.id) || !e.finishedAt) continue;
      const key = `${e.name}|${e.status}`;
      const ms = e.finishedAt.getTime() - e.createdAt.getTime();
      const list = groups.get(key);
      if (list) list.push(ms);
      else groups.set(key, [ms]);
    }
    cursor = page.nextCursor;
  } while (cursor);
  const at = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return [...groups]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, ms]) => {
      const [name, status] = key.split('|') as [string, string];
      ms.sort((a, b) => a - b);
      return { name, status, n: ms.length, p50: at(ms, 0.5), p99: at(ms, 0.99) };
    });
}

main().catch((err) => {
  // A message, not a stack trace: most failures here are about the environment (a database
  // that cannot be reached or started), which the message names.
  console.error(`npm start: ${(err as Error)?.message ?? String(err)}`);
  if (process.env.RHYTHM_DEBUG) console.error((err as Error)?.stack);
  process.exit(1);
});
