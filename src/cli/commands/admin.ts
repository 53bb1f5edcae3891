/** The one-shot commands: migrate, enqueue, get, cancel, config. */
import { readFileSync } from 'node:fs';
import { migrate, migrationStatus } from '../../db/migrate.js';
import { schemaReady } from '../../sql/status.js';
import { WaitTimeoutError } from '../../errors.js';
import { checkQueueName, checkTaskName } from '../../validate.js';
import type { EnqueueOptions, Execution } from '../../types.js';
import { UsageError, parseDuration, parseIntValue, show } from '../args.js';
import { parseJsonArgument } from '../json-input.js';
import { openSession, CliError, type Session } from '../runtime.js';
import { describeSettings, SETTING_KEYS } from '../config.js';
import { print, formatExecution, table } from '../output.js';
import {
  CONNECTION_FLAGS, CONNECTION_SETTINGS, WORKER_FLAGS, type Command, type CommandContext,
} from '../command.js';

const ID = /^[1-9]\d{0,18}$/;

function checkId(raw: string | undefined, usage: string): string {
  if (raw === undefined) throw new UsageError(`missing the execution id: ${usage}`);
  if (!ID.test(raw)) throw new UsageError(`invalid execution id ${JSON.stringify(raw)}: ids are positive integers`);
  return raw;
}

/** Runs `fn` on a session whose schema must already be migrated; closes it after. */
async function withSession<T>(ctx: CommandContext, autoMigrate: boolean, fn: (session: Session) => Promise<T>): Promise<T> {
  const session = await openSession(ctx.resolved.settings, ctx.log, { autoMigrate });
  try {
    if (!(await schemaReady(session.r.pool, session.r.names))) {
      throw new CliError(`schema ${JSON.stringify(session.r.names.schema)} has no Rhythm tables: run \`rhythm migrate\` first`);
    }
    return await fn(session);
  } finally {
    await session.close();
  }
}

export const migrateCommand: Command = {
  name: 'migrate',
  flags: { ...CONNECTION_FLAGS, status: { type: 'boolean' }, json: { type: 'boolean' } },
  positionals: 0,
  settings: CONNECTION_SETTINGS,
  async run(ctx) {
    const { status, json } = ctx.args.values;
    if (json && !status) throw new UsageError('--json goes with --status');
    const session = await openSession(ctx.resolved.settings, ctx.log, { autoMigrate: false });
    try {
      const { r } = session;
      if (status) {
        const list = await migrationStatus(r.pool, r.names);
        if (json) {
          await print(JSON.stringify({ schema: r.names.schema, migrations: list.map((m) => ({ ...m, applied: m.appliedAt !== null })) }));
        } else {
          const rows = list.map((m) => [m.name, m.appliedAt ? 'applied' : 'pending', m.appliedAt ? m.appliedAt.toISOString() : '-']);
          const pending = list.filter((m) => !m.appliedAt).length;
          await print(`schema ${r.names.schema}: ${list.length - pending} applied, ${pending} pending\n${table(['MIGRATION', 'STATE', 'APPLIED AT'], rows)}`);
        }
        return 0;
      }
      const applied = await migrate(r.pool, r.names);
      ctx.log.info({ schema: r.names.schema, applied }, 'migrations applied');
      await print(
        applied.length === 0
          ? `schema ${r.names.schema} is up to date`
          : `schema ${r.names.schema}: applied ${applied.join(', ')}`,
      );
      return 0;
    } finally {
      await session.close();
    }
  },
};

const ENQUEUE_USAGE = 'rhythm enqueue <task> [json-payload]';

export const enqueueCommand: Command = {
  name: 'enqueue',
  flags: {
    ...CONNECTION_FLAGS,
    queue: { type: 'string' },
    delay: { type: 'string' },
    'run-at': { type: 'string' },
    priority: { type: 'string' },
    'max-attempts': { type: 'string' },
    timeout: { type: 'string' },
    wait: { type: 'boolean' },
    'wait-timeout': { type: 'string' },
    json: { type: 'boolean' },
    'no-migrate': { type: 'boolean' },
  },
  positionals: 2,
  settings: [...CONNECTION_SETTINGS, 'autoMigrate'],
  async run(ctx) {
    const v = ctx.args.values;
    const [name, payloadText] = ctx.args.positionals;
    // Everything is checked before connecting: a usage error never touches the database.
    if (name === undefined) throw new UsageError(`missing the task name: ${ENQUEUE_USAGE}`);
    try {
      checkTaskName(name);
    } catch (err) {
      throw new UsageError(`<task>: ${(err as Error).message}`);
    }
    const text = payloadText === undefined ? 'null' : payloadText === '-' ? readFileSync(0, 'utf8') : payloadText;
    const payload = parseJsonArgument(payloadText === '-' ? 'the payload on stdin' : 'the payload', text);
    const options: EnqueueOptions = {};
    if (v.queue !== undefined) {
      try {
        options.queue = checkQueueName(v.queue);
      } catch (err) {
        throw new UsageError(`--queue: ${(err as Error).message}`);
      }
    }
    if (v.delay !== undefined && v['run-at'] !== undefined) throw new UsageError('--delay and --run-at cannot both be given');
    if (v.delay !== undefined) options.delayMs = parseDuration('--delay', v.delay);
    if (v['run-at'] !== undefined) {
      const at = new Date(v['run-at'] as string);
      if (Number.isNaN(at.getTime())) throw new UsageError(`--run-at must be an ISO date such as 2030-01-01T12:00:00Z, got ${show(v['run-at'])}`);
      options.runAt = at;
    }
    if (v.priority !== undefined) options.priority = parseIntValue('--priority', v.priority, -2_147_483_648);
    if (v['max-attempts'] !== undefined) options.maxAttempts = parseIntValue('--max-attempts', v['max-attempts'], 1);
    if (v.timeout !== undefined) {
      options.timeoutMs = parseDuration('--timeout', v.timeout);
      if (options.timeoutMs < 1) throw new UsageError(`--timeout must be at least 1ms, got ${show(v.timeout)}`);
    }
    if (v['wait-timeout'] !== undefined && !v.wait) throw new UsageError('--wait-timeout goes with --wait');
    const waitMs = v['wait-timeout'] === undefined ? 60_000 : parseDuration('--wait-timeout', v['wait-timeout']);

    return withSession(ctx, ctx.resolved.settings.autoMigrate, async ({ r }) => {
      const id = await r.enqueue(name, payload, options);
      ctx.log.info({ id, name, queue: options.queue ?? 'default' }, 'enqueued');
      if (!v.wait) {
        await print(v.json ? JSON.stringify({ id }) : id);
        return 0;
      }
      let e: Execution;
      try {
        e = await r.wait(id, { timeoutMs: waitMs });
      } catch (err) {
        if (err instanceof WaitTimeoutError) throw new CliError(`execution ${id} did not finish within ${waitMs} ms (it keeps its place in the queue)`);
        throw err;
      }
      await print(v.json ? JSON.stringify(e) : formatExecution(e));
      return e.status === 'completed' ? 0 : 1;
    });
  },
};

export const getCommand: Command = {
  name: 'get',
  flags: { ...CONNECTION_FLAGS, json: { type: 'boolean' } },
  positionals: 1,
  settings: CONNECTION_SETTINGS,
  async run(ctx) {
    const id = checkId(ctx.args.positionals[0], 'rhythm get <id>');
    return withSession(ctx, false, async ({ r }) => {
      const e = await r.get(id);
      if (!e) throw new CliError(`no execution with id ${id} (never existed, or pruned)`);
      await print(ctx.args.values.json ? JSON.stringify(e) : formatExecution(e));
      return 0;
    });
  },
};

export const cancelCommand: Command = {
  name: 'cancel',
  flags: { ...CONNECTION_FLAGS, json: { type: 'boolean' } },
  positionals: 1,
  settings: CONNECTION_SETTINGS,
  async run(ctx) {
    const id = checkId(ctx.args.positionals[0], 'rhythm cancel <id>');
    return withSession(ctx, false, async ({ r }) => {
      const now = await r.cancel(id);
      const e = now ? null : await r.get(id);
      if (!now && !e) throw new CliError(`no execution with id ${id} (never existed, or pruned)`);
      const status = now ? 'cancelled' : e!.status;
      if (ctx.args.values.json) {
        await print(JSON.stringify({ id, cancelled: status === 'cancelled', status }));
      } else {
        await print(now ? `cancelled execution ${id}` : `execution ${id} is already ${status}; nothing to cancel`);
      }
      return status === 'cancelled' ? 0 : 1;
    });
  },
};

export const configCommand: Command = {
  name: 'config',
  flags: { ...CONNECTION_FLAGS, ...WORKER_FLAGS, 'internal-worker': { type: 'boolean' }, json: { type: 'boolean' } },
  positionals: 0,
  settings: SETTING_KEYS,
  async run(ctx) {
    const described = describeSettings(ctx.resolved, SETTING_KEYS);
    if (ctx.args.values.json) {
      await print(JSON.stringify(described));
      return 0;
    }
    const rows = SETTING_KEYS.map((k) => {
      const d = described[k] as { value: unknown; source: string };
      return [k, typeof d.value === 'string' ? d.value : JSON.stringify(d.value), d.source];
    });
    const file = ctx.resolved.file ? `config file: ${ctx.resolved.file.path}` : 'config file: none';
    await print(`${table(['SETTING', 'VALUE', 'FROM'], rows)}\n${file}`);
    return 0;
  },
};
