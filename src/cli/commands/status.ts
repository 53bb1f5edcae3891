/** `rhythm status`: per-queue figures, once or refreshed (--watch) until a signal. */
import { queueStatus, schemaReady, type QueueStatus } from '../../sql/status.js';
import { Option } from 'commander';
import { parseDuration } from '../../config/parse.js';
import { openSession } from '../runtime.js';
import { CliError, UsageError } from '../errors.js';
import { print, formatDuration, table } from '../output.js';
import { CONNECTION_SETTINGS, ONE_SHOT_DEFAULTS, type Command } from '../command.js';

export interface StatusReport {
  schema: string;
  at: string;
  windowMs: number;
  queues: QueueStatus[];
}

function render(report: StatusReport): string {
  const head = `schema ${report.schema} at ${report.at}; failed/completed within ${formatDuration(report.windowMs)}`;
  if (report.queues.length === 0) return `${head}\n(no queued, scheduled, running or recently finished tasks)`;
  const rows = report.queues.map((q) => [
    q.queue,
    String(q.queued),
    String(q.scheduled),
    String(q.running),
    String(q.failed),
    String(q.completed),
    q.oldestWaitingMs === null ? '-' : formatDuration(q.oldestWaitingMs),
  ]);
  return `${head}\n${table(['QUEUE', 'QUEUED', 'SCHEDULED', 'RUNNING', 'FAILED', 'COMPLETED', 'OLDEST WAITING'], rows)}`;
}

export const statusCommand: Command = {
  name: 'status',
  summary: 'per-queue figures (--json for scripts, --watch to refresh)',
  description: `Per queue: tasks queued (ready), scheduled (delayed or waiting to retry), running, failed and completed within the window, and the age of the oldest ready task.`,
  settings: CONNECTION_SETTINGS,
  defaults: ONE_SHOT_DEFAULTS,
  options: [
    new Option('--json', 'print JSON (with --watch: one JSON document per line)'),
    new Option('--watch', 'refresh until SIGINT/SIGTERM'),
    new Option('--interval <duration>', 'refresh interval of --watch (default 2s)'),
    new Option('--window <duration>', 'window of the failed and completed counts (default 1h)'),
  ],
  async run(ctx) {
    const v = ctx.options;
    if (v.interval !== undefined && !v.watch) throw new UsageError('--interval goes with --watch');
    const intervalMs = v.interval === undefined ? 2_000 : parseDuration('--interval', v.interval, 100);
    const windowMs = v.window === undefined ? 3_600_000 : parseDuration('--window', v.window, 1);

    // One connection is all status needs, even when watching.
    const session = await openSession(ctx.settings, ctx.log, { autoMigrate: false, poolSize: 1 });
    let stop: (() => void) | undefined;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    const onSignal = () => stop?.();
    if (v.watch) {
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    }
    try {
      const { r } = session;
      if (!(await schemaReady(r.pool, r.names))) {
        throw new CliError(`schema ${JSON.stringify(r.names.schema)} has no Rhythm tables: run \`rhythm migrate\` first`);
      }
      const clear = v.watch && !v.json && process.stdout.isTTY;
      for (;;) {
        const report: StatusReport = {
          schema: r.names.schema,
          at: new Date().toISOString(),
          windowMs,
          queues: await queueStatus(r.pool, r.names, windowMs),
        };
        const text = v.json ? JSON.stringify(report) : render(report) + (v.watch && !clear ? '\n' : '');
        await print(clear ? `\x1b[2J\x1b[H${text}` : text);
        if (!v.watch) return 0;
        let timer: NodeJS.Timeout | undefined;
        const next = await Promise.race([
          stopped.then(() => 'stop' as const),
          new Promise<'tick'>((resolve) => (timer = setTimeout(() => resolve('tick'), intervalMs))),
        ]);
        clearTimeout(timer);
        if (next === 'stop') return 0;
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await session.close();
    }
  },
};
