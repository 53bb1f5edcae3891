/** `rhythm status`: figures per queue and task, and the queue controls in force, once or refreshed (--watch) until a signal. */
import { Option } from 'commander';
import type { QueueReport, StatusCounts } from '../../admin.js';
import type { ControlStatus } from '../../sql/controls.js';
import { parseDuration } from '../../config/parse.js';
import { openSession, requireMigrated } from '../runtime.js';
import { UsageError } from '../errors.js';
import { formatDuration, table } from '../output.js';
import { CONNECTION_SETTINGS, ONE_SHOT_DEFAULTS, type Command } from '../command.js';

export interface StatusReport {
  schema: string;
  at: string;
  windowMs: number;
  /** Per queue, with the same figures per task name. */
  queues: QueueReport[];
  /** Paused and rate-limited queues, and groups at their limit. */
  controls: ControlStatus;
}

function counts(c: StatusCounts): string[] {
  return [
    String(c.queued),
    String(c.scheduled),
    String(c.running),
    String(c.failed),
    String(c.completed),
    String(c.cancelled),
    c.oldestWaitingMs === null ? '-' : formatDuration(c.oldestWaitingMs),
  ];
}

function render(report: StatusReport): string {
  const parts = [`schema ${report.schema} at ${report.at}; failed/completed/cancelled within ${formatDuration(report.windowMs)}`];
  if (report.queues.length === 0) {
    parts.push('(no queued, scheduled, running or recently finished tasks)');
  } else {
    // The queue's own row (task "*") then one row per task name in it.
    const rows = report.queues.flatMap((q) => [[q.queue, '*', ...counts(q)], ...q.tasks.map((t) => [q.queue, t.name, ...counts(t)])]);
    parts.push(table(['QUEUE', 'TASK', 'QUEUED', 'SCHEDULED', 'RUNNING', 'FAILED', 'COMPLETED', 'CANCELLED', 'OLDEST WAITING'], rows));
  }
  const { queues, groupsAtLimit } = report.controls;
  if (queues.length > 0) {
    const rows = queues.map((c) => [
      c.queue,
      c.paused ? `paused since ${c.pausedAt!.toISOString()}` : 'running',
      c.rateLimit === null ? '-' : `${c.rateLimit.max} per ${formatDuration(c.rateLimit.intervalMs)}`,
      c.availableStarts === null ? '-' : String(c.availableStarts),
    ]);
    parts.push('', 'Queue controls:', table(['QUEUE', 'STATE', 'RATE LIMIT', 'STARTS AVAILABLE'], rows));
  }
  if (groupsAtLimit.length > 0) {
    const rows = groupsAtLimit.map((g) => [g.queue, g.group, String(g.running), String(g.limit)]);
    parts.push('', 'Groups at their limit:', table(['QUEUE', 'GROUP', 'RUNNING', 'LIMIT'], rows));
  }
  return parts.join('\n');
}

export const statusCommand: Command = {
  name: 'status',
  summary: 'figures per queue and task, queue controls (--json, --watch)',
  description: `Per queue and per task name in it: tasks queued (ready), scheduled (delayed or waiting to retry), running, failed, completed and cancelled within the window, and the age of the oldest ready task. Then the paused and rate-limited queues, and the groups running as many tasks as their limit allows.`,
  settings: CONNECTION_SETTINGS,
  defaults: ONE_SHOT_DEFAULTS,
  options: [
    new Option('--json', 'print JSON (with --watch: one JSON document per line)'),
    new Option('--watch', 'refresh until SIGINT/SIGTERM'),
    new Option('--interval <duration>', 'refresh interval of --watch (default 2s)'),
    new Option('--window <duration>', 'window of the failed, completed and cancelled counts (default 1h)'),
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
      await requireMigrated(r);
      const clear = v.watch && !v.json && ctx.io.stdoutIsTTY;
      for (;;) {
        const [status, controls] = await Promise.all([r.status({ windowMs }), r.queueControls()]);
        const report: StatusReport = { schema: r.schema, at: status.at.toISOString(), windowMs, queues: status.queues, controls };
        const text = v.json ? JSON.stringify(report) : render(report) + (v.watch && !clear ? '\n' : '');
        await ctx.print(clear ? `\x1b[2J\x1b[H${text}` : text);
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
