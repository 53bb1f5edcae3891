/** The one-shot commands on the schema and single executions: migrate, enqueue, get. */
import { Option } from 'commander';
import { WaitTimeoutError } from '../../errors.js';
import { checkQueueName, checkTaskName } from '../../validate.js';
import type { EnqueueOptions, Execution } from '../../types.js';
import type { Rhythm } from '../../rhythm.js';
import { parseDuration, parseInteger, show, named } from '../../config/parse.js';
import { parseJsonText } from '../../config/json-text.js';
import { openSession, withSession as withMigratedSession, type Session } from '../runtime.js';
import { checkId } from './executions.js';
import { CliError, UsageError } from '../errors.js';
import { formatExecution, formatWorkflow, table } from '../output.js';
import { CONNECTION_SETTINGS, ONE_SHOT_DEFAULTS, type Command, type CommandContext } from '../command.js';

/** Runs `fn` on a session whose schema is migrated; closes it after. */
function withSession<T>(ctx: CommandContext, autoMigrate: boolean, fn: (session: Session) => Promise<T>): Promise<T> {
  return withMigratedSession(ctx.settings, ctx.log, { autoMigrate }, fn);
}

const json = () => new Option('--json', 'print JSON');

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'apply pending migrations (--status lists applied and pending)',
  description: `Applies pending migrations to the schema (one transaction, under an advisory lock: safe to run while other processes start). Workers also migrate at startup unless --no-migrate.`,
  settings: CONNECTION_SETTINGS,
  defaults: ONE_SHOT_DEFAULTS,
  options: [
    new Option('--status', 'list applied and pending migrations, apply nothing'),
    new Option('--json', 'with --status: print JSON'),
  ],
  async run(ctx) {
    const { status, json } = ctx.options;
    if (json && !status) throw new UsageError('--json goes with --status');
    const session = await openSession(ctx.settings, ctx.log, { autoMigrate: false });
    try {
      const { r } = session;
      if (status) {
        const list = await r.migrationStatus();
        if (json) {
          await ctx.print(JSON.stringify({ schema: r.schema, migrations: list.map((m) => ({ ...m, applied: m.appliedAt !== null })) }));
        } else {
          const rows = list.map((m) => [m.name, m.appliedAt ? 'applied' : 'pending', m.appliedAt ? m.appliedAt.toISOString() : '-']);
          const pending = list.filter((m) => !m.appliedAt).length;
          await ctx.print(
            `schema ${r.schema}: ${list.length - pending} applied, ${pending} pending\n${table(['MIGRATION', 'STATE', 'APPLIED AT'], rows)}`,
          );
        }
        return 0;
      }
      const applied = await r.migrate();
      ctx.log.info({ schema: r.schema, applied }, 'migrations applied');
      await ctx.print(applied.length === 0 ? `schema ${r.schema} is up to date` : `schema ${r.schema}: applied ${applied.join(', ')}`);
      return 0;
    } finally {
      await session.close();
    }
  },
};

/**
 * --wait: waits for the execution and prints it; the exit code is 0 only if it completed. A
 * wait that times out is a runtime error saying what happens to the execution (`after`).
 */
export async function printWhenFinished(
  ctx: CommandContext,
  r: Rhythm,
  id: string,
  waitMs: number,
  json: boolean,
  after: string,
): Promise<number> {
  let e: Execution;
  try {
    e = await r.wait(id, { timeoutMs: waitMs });
  } catch (err) {
    if (err instanceof WaitTimeoutError) throw new CliError(`execution ${id} did not finish within ${waitMs} ms (${after})`);
    throw err;
  }
  await ctx.print(json ? JSON.stringify(e) : formatExecution(e));
  return e.status === 'completed' ? 0 : 1;
}

const ENQUEUE_USAGE = 'rhythm enqueue <task> [json-payload]';

export const enqueueCommand: Command = {
  name: 'enqueue',
  summary: 'enqueue a task and print its id',
  description: `Enqueues one task and prints its execution id. The payload is JSON (default null); "-" reads it from stdin. A payload that does not parse is refused with the position of the error. Quote it for the shell: rhythm enqueue submit-report '{"reportId": 7}'`,
  arguments: ['<task>', '[json-payload]'],
  settings: [...CONNECTION_SETTINGS, 'autoMigrate'],
  defaults: ONE_SHOT_DEFAULTS,
  options: [
    new Option('--queue <name>', 'queue (default: default)'),
    new Option('--delay <duration>', 'run no earlier than this from now'),
    new Option('--run-at <iso-date>', 'run no earlier than this time (exclusive with --delay)'),
    new Option('--priority <n>', 'higher runs first (default 0)'),
    new Option('--max-attempts <n>', 'attempts before the execution fails (default 3)'),
    new Option('--timeout <duration>', 'time limit of each attempt'),
    new Option('--wait', 'wait until the execution finishes and print it; exit code 1 unless it completed'),
    new Option('--wait-timeout <duration>', 'give up waiting after this (default 60s; exit code 1)'),
    new Option('--json', 'print JSON ({"id": ...}, or the execution with --wait)'),
  ],
  async run(ctx) {
    const v = ctx.options;
    const [name, payloadText] = ctx.args;
    // Everything is checked before connecting: a usage error never touches the database.
    if (name === undefined) throw new UsageError(`missing the task name: ${ENQUEUE_USAGE}`);
    named('<task>', () => checkTaskName(name));
    const text = payloadText === undefined ? 'null' : payloadText === '-' ? ctx.io.stdin() : payloadText;
    const payload = parseJsonText(payloadText === '-' ? 'the payload on stdin' : 'the payload', text);
    const options: EnqueueOptions = {};
    if (v.queue !== undefined) options.queue = named('--queue', () => checkQueueName(v.queue));
    if (v.delay !== undefined && v.runAt !== undefined) throw new UsageError('--delay and --run-at cannot both be given');
    if (v.delay !== undefined) options.delayMs = parseDuration('--delay', v.delay);
    if (v.runAt !== undefined) {
      const at = new Date(v.runAt as string);
      if (Number.isNaN(at.getTime()))
        throw new UsageError(`--run-at must be an ISO date such as 2030-01-01T12:00:00Z, got ${show(v.runAt)}`);
      options.runAt = at;
    }
    if (v.priority !== undefined) options.priority = parseInteger('--priority', v.priority, -2_147_483_648);
    if (v.maxAttempts !== undefined) options.maxAttempts = parseInteger('--max-attempts', v.maxAttempts, 1);
    if (v.timeout !== undefined) options.timeoutMs = parseDuration('--timeout', v.timeout, 1);
    if (v.waitTimeout !== undefined && !v.wait) throw new UsageError('--wait-timeout goes with --wait');
    const waitMs = v.waitTimeout === undefined ? 60_000 : parseDuration('--wait-timeout', v.waitTimeout);

    return withSession(ctx, ctx.settings.autoMigrate, async ({ r }) => {
      const id = await r.enqueue(name, payload, options);
      ctx.log.info({ id, name, queue: options.queue ?? 'default' }, 'enqueued');
      if (!v.wait) {
        await ctx.print(v.json ? JSON.stringify({ id }) : id);
        return 0;
      }
      return printWhenFinished(ctx, r, id, waitMs, v.json === true, 'it keeps its place in the queue');
    });
  },
};

export const getCommand: Command = {
  name: 'get',
  summary: 'show an execution',
  description: `Prints an execution: status, attempts, payload, result or error, timestamps. For a workflow, also its children (tasks and workflows it started, by call sequence, with their status), what its current await waits for (children, signal names, a timer's due time) and the signals it has not taken yet (--json: under "workflow"). Exit code 1 if there is no execution with this id (or it was pruned).`,
  arguments: ['<id>'],
  settings: CONNECTION_SETTINGS,
  defaults: ONE_SHOT_DEFAULTS,
  options: [json()],
  async run(ctx) {
    const id = checkId(ctx.args[0], 'rhythm get <id>');
    return withSession(ctx, false, async ({ r }) => {
      const e = await r.get(id);
      if (!e) throw new CliError(`no execution with id ${id} (never existed, or pruned)`);
      const workflow = e.kind === 'workflow' ? await r.workflowDetails(id) : null;
      if (ctx.options.json) await ctx.print(JSON.stringify(workflow ? { ...e, workflow } : e));
      else await ctx.print(workflow ? `${formatExecution(e)}\n${formatWorkflow(e, workflow)}` : formatExecution(e));
      return 0;
    });
  },
};
