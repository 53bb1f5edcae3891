/**
 * The workflow commands: start-workflow and signal. They use the workflows registered by the
 * workers (a worker stores the .flow sources it registers when it starts), so the command
 * needs no .flow file of its own; `rhythm get <id>` shows a workflow's children and waits.
 */
import { Option } from 'commander';
import { checkFlowName, checkQueueName } from '../../validate.js';
import type { StartWorkflowOptions } from '../../types.js';
import { parseDuration, parseInteger, named } from '../../config/parse.js';
import { parseJsonText } from '../../config/json-text.js';
import { withSession } from '../runtime.js';
import { checkId } from './executions.js';
import { UsageError } from '../errors.js';
import { printWhenFinished } from './admin.js';
import { CONNECTION_SETTINGS, ONE_SHOT_DEFAULTS, type Command, type CommandContext } from '../command.js';

/** A JSON argument (default null); "-" reads it from stdin. */
function jsonArgument(ctx: CommandContext, text: string | undefined, what: string): unknown {
  if (text === undefined) return null;
  if (text === '-') return parseJsonText(`the ${what} on stdin`, ctx.io.stdin());
  return parseJsonText(`the ${what}`, text);
}

const START_USAGE = 'rhythm start-workflow <name> [inputs-json]';

export const startWorkflowCommand: Command = {
  name: 'start-workflow',
  summary: 'start a .flow workflow and print its id',
  description: `Starts a workflow registered by a worker (worker.workflow(name, file) or workflows(dir); workers store their workflows when they start) and prints its execution id. The inputs are JSON (the script's \`Inputs\`, default null); "-" reads them from stdin. Quote them for the shell: rhythm start-workflow order '{"id": 7}'`,
  arguments: ['<name>', '[inputs-json]'],
  settings: CONNECTION_SETTINGS,
  defaults: ONE_SHOT_DEFAULTS,
  options: [
    new Option('--queue <name>', "queue whose workers run it (default: default); its tasks' default queue too"),
    new Option('--priority <n>', 'higher runs first (default 0)'),
    new Option('--wait', 'wait until the workflow finishes and print it; exit code 1 unless it completed'),
    new Option('--wait-timeout <duration>', 'give up waiting after this (default 60s; exit code 1)'),
    new Option('--json', 'print JSON ({"id": ...}, or the execution with --wait)'),
  ],
  epilog:
    'Examples:\n  rhythm start-workflow order \'{"id": 7, "items": []}\' --queue default\n  rhythm start-workflow nightly-cleanup --wait',
  async run(ctx) {
    const v = ctx.options;
    const [name, inputsText] = ctx.args;
    if (name === undefined) throw new UsageError(`missing the workflow name: ${START_USAGE}`);
    named('<name>', () => checkFlowName('workflow name', name));
    const inputs = jsonArgument(ctx, inputsText, 'inputs');
    const options: StartWorkflowOptions = {};
    if (v.queue !== undefined) options.queue = named('--queue', () => checkQueueName(v.queue));
    if (v.priority !== undefined) options.priority = parseInteger('--priority', v.priority, -2_147_483_648);
    if (v.waitTimeout !== undefined && !v.wait) throw new UsageError('--wait-timeout goes with --wait');
    const waitMs = v.waitTimeout === undefined ? 60_000 : parseDuration('--wait-timeout', v.waitTimeout);
    return withSession(ctx.settings, ctx.log, { autoMigrate: false }, async ({ r }) => {
      const id = await r.startWorkflow(name, inputs, options);
      ctx.log.info({ id, name, queue: options.queue ?? 'default' }, 'workflow started');
      if (!v.wait) {
        await ctx.print(v.json ? JSON.stringify({ id }) : id);
        return 0;
      }
      return printWhenFinished(ctx, r, id, waitMs, v.json === true, `it goes on; \`rhythm get ${id}\` shows where it waits`);
    });
  },
};

const SIGNAL_USAGE = 'rhythm signal <id> <name> [payload-json]';

export const signalCommand: Command = {
  name: 'signal',
  summary: 'send a signal to a running workflow',
  description: `Sends a signal to a workflow: its next \`await Signal.next(name)\` receives the payload (JSON, default null; "-" reads it from stdin). Signals are kept until taken, first in, first out, also when sent before the workflow waits. Exit code 1 if the workflow has already finished; 2 if the id is not a workflow.`,
  arguments: ['<id>', '<name>', '[payload-json]'],
  settings: CONNECTION_SETTINGS,
  defaults: ONE_SHOT_DEFAULTS,
  options: [new Option('--json', 'print JSON ({"id", "signal"})')],
  epilog: 'Example:\n  rhythm signal 1042 approve \'{"by": "ana"}\'',
  async run(ctx) {
    const [rawId, name, payloadText] = ctx.args;
    const id = checkId(rawId, SIGNAL_USAGE);
    if (name === undefined) throw new UsageError(`missing the signal name: ${SIGNAL_USAGE}`);
    named('<name>', () => checkFlowName('signal name', name));
    const payload = jsonArgument(ctx, payloadText, 'payload');
    return withSession(ctx.settings, ctx.log, { autoMigrate: false }, async ({ r }) => {
      await r.signal(id, name, payload);
      await ctx.print(ctx.options.json ? JSON.stringify({ id, signal: name }) : `sent signal ${JSON.stringify(name)} to workflow ${id}`);
      return 0;
    });
  },
};
