/**
 * The commands over many executions: list, retry, cancel. They select by ids or by the same
 * filter flags (--queue, --name, --status, --since), checked before connecting so that a
 * mistake names its flag and never touches the database.
 */
import { Option } from 'commander';
import { checkListOptions, MAX_LIMIT, DEFAULT_LIMIT, STATUSES, type ExecutionFilter, type Skipped } from '../../admin.js';
import { checkQueueName, checkTaskName } from '../../validate.js';
import type { Execution, ExecutionStatus } from '../../types.js';
import { parseDuration, parseInteger, parseList, show, named } from '../../config/parse.js';
import { withSession } from '../runtime.js';
import { UsageError } from '../errors.js';
import { table } from '../output.js';
import { CONNECTION_SETTINGS, ONE_SHOT_DEFAULTS, type Command, type CommandContext } from '../command.js';

const ID = /^[1-9]\d{0,18}$/;

/** An execution id from the command line; `usage` completes the error when it is missing. */
export function checkId(raw: string | undefined, usage: string): string {
  if (raw === undefined) throw new UsageError(`missing the execution id: ${usage}`);
  if (!ID.test(raw)) throw new UsageError(`invalid execution id ${JSON.stringify(raw)}: ids are positive integers`);
  return raw;
}

const UNFINISHED: readonly ExecutionStatus[] = ['scheduled', 'queued', 'running'];
const RETRYABLE: readonly ExecutionStatus[] = ['failed', 'cancelled'];

function filterOptions(statuses: readonly ExecutionStatus[], statusNote: string): Option[] {
  return [
    new Option('--queue <name>', 'only executions of this queue'),
    new Option('--name <task>', 'only executions of this task'),
    new Option('--status <list>', `only these statuses, comma-separated: ${statuses.join(', ')}${statusNote}`),
    new Option('--since <when>', 'only executions created at or after this: an ISO date, or a duration ago (30m, 2h, 7d)'),
  ];
}

/** `--since`: an ISO date, or a duration meaning that long before now. */
function parseSince(raw: unknown): Date {
  try {
    return new Date(Date.now() - parseDuration('--since', raw));
  } catch {
    const at = typeof raw === 'string' && /^\d{4}-\d{2}-\d{2}/.test(raw) ? new Date(raw) : new Date(NaN);
    if (Number.isNaN(at.getTime())) {
      throw new UsageError(
        `--since must be an ISO date such as 2030-01-01T12:00:00Z or a duration ago such as 30m, 2h or 7d, got ${show(raw)}`,
      );
    }
    return at;
  }
}

/** The filter the flags give (only the criteria given), checked against the statuses `allowed`. */
function readFilter(ctx: CommandContext, allowed: readonly ExecutionStatus[]): ExecutionFilter {
  const v = ctx.options;
  const filter: ExecutionFilter = {};
  if (v.queue !== undefined) filter.queue = named('--queue', () => checkQueueName(v.queue));
  if (v.name !== undefined) filter.name = named('--name', () => checkTaskName(v.name));
  if (v.status !== undefined) {
    const list = parseList('--status', v.status);
    for (const s of list) {
      if (!STATUSES.includes(s as ExecutionStatus))
        throw new UsageError(`--status: unknown status ${JSON.stringify(s)} (known: ${STATUSES.join(', ')})`);
      if (!allowed.includes(s as ExecutionStatus)) {
        throw new UsageError(
          `--status: \`rhythm ${ctx.name}\` cannot select ${JSON.stringify(s)} executions (allowed: ${allowed.join(', ')})`,
        );
      }
    }
    filter.status = list as ExecutionStatus[];
  }
  if (v.since !== undefined) filter.since = parseSince(v.since);
  return filter;
}

/**
 * What retry and cancel act on: the ids given, or the filter. Never both, and never nothing:
 * an empty filter would select every execution, which is refused with what to say instead.
 */
function readTarget(ctx: CommandContext, allowed: readonly ExecutionStatus[]): string[] | ExecutionFilter {
  const filter = readFilter(ctx, allowed);
  const criteria = Object.keys(filter).length;
  if (ctx.args.length > 0) {
    if (criteria > 0) throw new UsageError(`give execution ids or filter flags (--queue, --name, --status, --since), not both`);
    return ctx.args.map((raw) => checkId(raw, ''));
  }
  if (criteria === 0) {
    throw new UsageError(
      `missing what to ${ctx.name}: give execution ids, or at least one of --queue, --name, --status, --since (all of them: --status ${allowed.join(',')})`,
    );
  }
  return filter;
}

/** Ids that name no execution: an error, so on stderr (the states of the others are the answer, on stdout). */
function reportMissing(ctx: CommandContext, skipped: Skipped[]): void {
  const missing = skipped.filter((s) => s.status === null);
  if (missing.length > 0) ctx.io.err(missing.map((s) => `no execution with id ${s.id} (never existed, or pruned)\n`).join(''));
}

function date(d: Date | null): string {
  return d ? d.toISOString() : '-';
}

function listTable(items: Execution[]): string {
  const rows = items.map((e) => [
    e.id,
    e.queue,
    e.name,
    e.status,
    `${e.attempts}/${e.maxAttempts}`,
    date(e.createdAt),
    date(e.finishedAt),
    e.error ? `${e.error.name}: ${e.error.message}`.replace(/\s+/g, ' ').slice(0, 80) : '',
  ]);
  return table(['ID', 'QUEUE', 'NAME', 'STATUS', 'ATTEMPTS', 'CREATED', 'FINISHED', 'ERROR'], rows);
}

export const listCommand: Command = {
  name: 'list',
  summary: 'list executions, newest first (filters, pages, --json)',
  description: `Lists executions, newest first, one page at a time: with more to show, the last line gives the --cursor of the next page. Filters combine (every one given must match).`,
  settings: CONNECTION_SETTINGS,
  defaults: ONE_SHOT_DEFAULTS,
  options: [
    ...filterOptions(STATUSES, ''),
    new Option('--limit <n>', `most executions per page (default ${DEFAULT_LIMIT}, at most ${MAX_LIMIT})`),
    new Option('--cursor <cursor>', 'continue after the page whose last line (or nextCursor) gave this'),
    new Option('--json', 'print JSON ({"items": [...], "nextCursor": ...})'),
  ],
  epilog: 'Examples:\n  rhythm list --status failed --since 1h\n  rhythm list --queue emails --name send-welcome --limit 20 --json',
  async run(ctx) {
    const v = ctx.options;
    const filter = readFilter(ctx, STATUSES);
    const limit = v.limit === undefined ? undefined : parseInteger('--limit', v.limit, 1, MAX_LIMIT);
    const cursor = v.cursor === undefined ? undefined : String(v.cursor);
    if (cursor !== undefined) named('--cursor', () => checkListOptions({ cursor }));
    return withSession(ctx.settings, ctx.log, { autoMigrate: false }, async ({ r }) => {
      const page = await r.list({ ...filter, limit, cursor });
      if (v.json) {
        await ctx.print(JSON.stringify(page));
        return 0;
      }
      const lines = [page.items.length === 0 ? '(no executions match)' : listTable(page.items)];
      if (page.nextCursor !== null) lines.push(`more: --cursor ${page.nextCursor}`);
      await ctx.print(lines.join('\n'));
      return 0;
    });
  },
};

export const retryCommand: Command = {
  name: 'retry',
  summary: 'run failed or cancelled executions again (by id or filter)',
  description: `Runs failed or cancelled executions again: each is queued now as a new attempt and keeps its history. Select them by id, or by filter flags (--status defaults to failed). Exit code 1 if an id given was not failed or cancelled (it is left alone and named).`,
  arguments: ['[id...]'],
  settings: CONNECTION_SETTINGS,
  defaults: ONE_SHOT_DEFAULTS,
  options: [
    ...filterOptions(RETRYABLE, ' (default failed)'),
    new Option('--attempts <n>', 'attempts each may make from now on (default 1)'),
    new Option('--json', 'print JSON ({"retried": [ids], "skipped": [{"id", "status"}]})'),
  ],
  epilog:
    'Examples:\n  rhythm retry 1042 1043\n  rhythm retry --queue emails --since 2h\n  rhythm retry --status cancelled --name send-welcome',
  async run(ctx) {
    const target = readTarget(ctx, RETRYABLE);
    const attempts = ctx.options.attempts === undefined ? undefined : parseInteger('--attempts', ctx.options.attempts, 1, 1_000_000);
    return withSession(ctx.settings, ctx.log, { autoMigrate: false }, async ({ r }) => {
      const result = await r.retry(target, attempts === undefined ? {} : { attempts });
      if (ctx.options.json) {
        await ctx.print(JSON.stringify(result));
      } else {
        const lines = result.retried.map((id) => `retried execution ${id}`);
        for (const s of result.skipped)
          if (s.status !== null) lines.push(`execution ${s.id} is ${s.status}; only failed or cancelled executions are retried`);
        if (lines.length === 0) lines.push('nothing to retry');
        await ctx.print(lines.join('\n'));
        reportMissing(ctx, result.skipped);
      }
      return result.skipped.length === 0 ? 0 : 1;
    });
  },
};

export const cancelCommand: Command = {
  name: 'cancel',
  summary: 'cancel executions (by id or filter)',
  description: `Cancels executions: a scheduled or queued one never runs; a running one's handler sees its abort signal. Select them by id, or by filter flags over the unfinished ones. Exit code 0 if every id given is cancelled (now or before), 1 if one does not exist or had already completed or failed.`,
  arguments: ['[id...]'],
  settings: CONNECTION_SETTINGS,
  defaults: ONE_SHOT_DEFAULTS,
  options: [
    ...filterOptions(UNFINISHED, ' (default: all three)'),
    new Option('--json', 'print JSON ({"cancelled": [ids], "skipped": [{"id", "status"}]})'),
  ],
  epilog: 'Examples:\n  rhythm cancel 1042\n  rhythm cancel --queue emails --status scheduled',
  async run(ctx) {
    const target = readTarget(ctx, UNFINISHED);
    return withSession(ctx.settings, ctx.log, { autoMigrate: false }, async ({ r }) => {
      const result = await r.cancel(target);
      // Cancelled before: what was asked for holds, so it is no failure.
      const failed = result.skipped.filter((s) => s.status !== 'cancelled');
      if (ctx.options.json) {
        await ctx.print(JSON.stringify(result));
      } else {
        const lines = result.cancelled.map((id) => `cancelled execution ${id}`);
        for (const s of result.skipped) if (s.status === 'cancelled') lines.push(`execution ${s.id} is already cancelled`);
        for (const s of failed) if (s.status !== null) lines.push(`execution ${s.id} is already ${s.status}; nothing to cancel`);
        if (lines.length === 0) lines.push('nothing to cancel');
        await ctx.print(lines.join('\n'));
        reportMissing(ctx, failed);
      }
      return failed.length === 0 ? 0 : 1;
    });
  },
};
