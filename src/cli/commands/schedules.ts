/** `rhythm schedules`: the cron schedules with their next fire times, where they came from, and their last fire. */
import { Option } from 'commander';
import type { Schedule } from '../../schedules/schedules.js';
import { withSession } from '../runtime.js';
import { table } from '../output.js';
import { CONNECTION_SETTINGS, ONE_SHOT_DEFAULTS, type Command } from '../command.js';

/** Next fire times the table shows per schedule (--json has them all). */
const SHOWN_FIRES = 3;

function render(list: Schedule[]): string {
  if (list.length === 0) return '(no cron schedules)';
  const rows = list.map((s) => [
    s.name,
    s.cron,
    s.timezone,
    s.task,
    s.queue,
    s.nextRuns.length === 0
      ? 'never'
      : s.nextRuns
          .slice(0, SHOWN_FIRES)
          .map((d) => d.toISOString())
          .join(', '),
    s.lastFiredAt ? s.lastFiredAt.toISOString() : '-',
    s.synced ? 'config' : 'api',
  ]);
  return table(['NAME', 'CRON', 'TIMEZONE', 'TASK', 'QUEUE', 'NEXT FIRES', 'LAST FIRED', 'FROM'], rows);
}

export const schedulesCommand: Command = {
  name: 'schedules',
  summary: 'list cron schedules with their next fire times (--json)',
  description: `Lists the cron schedules by name: expression, time zone, task and queue, the next ${SHOWN_FIRES} fire times (--json: the next 5, and every option), the last one fired, and where the schedule came from: "config" (a config file's "schedules", synced by the processes running the internal worker, removed once the file no longer declares it) or "api" (r.schedule(), never removed by a sync).`,
  settings: CONNECTION_SETTINGS,
  defaults: ONE_SHOT_DEFAULTS,
  options: [new Option('--json', 'print JSON ({"schedules": [...]})')],
  epilog: 'Examples:\n  rhythm schedules\n  rhythm schedules --json',
  async run(ctx) {
    return withSession(ctx.settings, ctx.log, { autoMigrate: false }, async ({ r }) => {
      const list = await r.schedules();
      await ctx.print(ctx.options.json ? JSON.stringify({ schedules: list }) : render(list));
      return 0;
    });
  },
};
