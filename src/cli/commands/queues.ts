/**
 * The queue controls: pause, resume, rate-limit. They act on every worker of the queue in
 * every process, through the database; `rhythm status` shows what is in force.
 */
import { Option } from 'commander';
import { checkQueueName } from '../../validate.js';
import { parseDuration, parseInteger, named } from '../../config/parse.js';
import { withSession } from '../runtime.js';
import { UsageError } from '../errors.js';
import { formatDuration } from '../output.js';
import { CONNECTION_SETTINGS, ONE_SHOT_DEFAULTS, type Command, type CommandContext } from '../command.js';

function queueArgument(ctx: CommandContext): string {
  const [queue] = ctx.args;
  if (queue === undefined) throw new UsageError(`missing the queue name: rhythm ${ctx.name} <queue>`);
  return named('<queue>', () => checkQueueName(queue));
}

export const pauseCommand: Command = {
  name: 'pause',
  summary: 'stop workers starting tasks of a queue (until resume)',
  description: `Pauses a queue: no worker in any process starts another of its tasks until \`rhythm resume\`; running tasks finish, and enqueueing goes on. A queue need not exist yet: pausing one that has no tasks holds back those that come.`,
  arguments: ['<queue>'],
  settings: CONNECTION_SETTINGS,
  defaults: ONE_SHOT_DEFAULTS,
  options: [new Option('--json', 'print JSON ({"queue", "paused": true, "pausedAt"})')],
  async run(ctx) {
    const queue = queueArgument(ctx);
    return withSession(ctx.settings, ctx.log, { autoMigrate: false }, async ({ r }) => {
      const pausedAt = await r.pause(queue);
      await ctx.print(
        ctx.options.json
          ? JSON.stringify({ queue, paused: true, pausedAt })
          : `queue ${queue} is paused (since ${pausedAt.toISOString()}); \`rhythm resume ${queue}\` resumes it`,
      );
      return 0;
    });
  },
};

export const resumeCommand: Command = {
  name: 'resume',
  summary: 'let workers start tasks of a paused queue again',
  description: `Resumes a paused queue and wakes its workers. A queue that was not paused is left as it is (exit code 0).`,
  arguments: ['<queue>'],
  settings: CONNECTION_SETTINGS,
  defaults: ONE_SHOT_DEFAULTS,
  options: [new Option('--json', 'print JSON ({"queue", "resumed": true|false})')],
  async run(ctx) {
    const queue = queueArgument(ctx);
    return withSession(ctx.settings, ctx.log, { autoMigrate: false }, async ({ r }) => {
      const resumed = await r.resume(queue);
      await ctx.print(
        ctx.options.json
          ? JSON.stringify({ queue, resumed })
          : resumed
            ? `queue ${queue} is resumed`
            : `queue ${queue} was not paused; nothing to do`,
      );
      return 0;
    });
  },
};

export const rateLimitCommand: Command = {
  name: 'rate-limit',
  summary: 'limit how many tasks of a queue start per interval (--clear removes it)',
  description: `Sets the rate limit of a queue: across every worker and process, at most --max of its tasks start per --interval (also the largest burst after an idle spell). --clear removes the limit.`,
  arguments: ['<queue>'],
  settings: CONNECTION_SETTINGS,
  defaults: ONE_SHOT_DEFAULTS,
  options: [
    new Option('--max <n>', 'most starts per interval (at least 1)'),
    new Option('--interval <duration>', 'the interval (at least 1ms)'),
    new Option('--clear', 'remove the rate limit'),
    new Option('--json', 'print JSON ({"queue", "rateLimit": {"max", "intervalMs"} | null})'),
  ],
  epilog: 'Examples:\n  rhythm rate-limit emails --max 100 --interval 1m\n  rhythm rate-limit emails --clear',
  async run(ctx) {
    const queue = queueArgument(ctx);
    const v = ctx.options;
    let limit: { max: number; intervalMs: number } | null;
    if (v.clear) {
      if (v.max !== undefined || v.interval !== undefined) throw new UsageError('--clear cannot go with --max or --interval');
      limit = null;
    } else {
      if (v.max === undefined && v.interval === undefined)
        throw new UsageError('give --max and --interval to set a rate limit, or --clear to remove it');
      if (v.max === undefined) throw new UsageError('--max is missing: give the most starts per --interval (an integer >= 1)');
      if (v.interval === undefined) throw new UsageError('--interval is missing: give the interval of --max, such as 1s or 1m');
      limit = { max: parseInteger('--max', v.max, 1), intervalMs: parseDuration('--interval', v.interval, 1) };
    }
    return withSession(ctx.settings, ctx.log, { autoMigrate: false }, async ({ r }) => {
      await r.setRateLimit(queue, limit);
      if (v.json) await ctx.print(JSON.stringify({ queue, rateLimit: limit }));
      else
        await ctx.print(
          limit === null
            ? `queue ${queue} has no rate limit`
            : `queue ${queue}: at most ${limit.max} starts per ${formatDuration(limit.intervalMs)}`,
        );
      return 0;
    });
  },
};
